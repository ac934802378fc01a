//! The state store backends, embedded and Redis (a real redis-server), pass the same
//! contract, and Redis going away does not stop commits.

use e2e::RedisServer;
use runtime::store::{self, Backend, StateStore, Write};

fn contract(store: &mut dyn StateStore) {
    assert_eq!(store.get("a").ok(), Some(None));
    store.commit(vec![Write::Put("a".into(), b"1".to_vec()), Write::Put("b".into(), b"2".to_vec())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.get("a").ok().flatten(), Some(b"1".to_vec()));
    store.commit(vec![Write::Delete("a".into()), Write::Put("b".into(), b"3".to_vec())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.get("a").ok(), Some(None));
    assert_eq!(store.get("b").ok().flatten(), Some(b"3".to_vec()));
    assert_eq!(store.buffered(), 0);
}

#[test]
fn embedded_store_keeps_commits_across_reopen() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let backend = Backend::Embedded { path: dir.path().join("nested/state.redb") };
    {
        let mut s = store::open(&backend).unwrap_or_else(|e| panic!("{e}"));
        contract(s.as_mut());
    }
    let mut s = store::open(&backend).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.get("b").ok().flatten(), Some(b"3".to_vec()));
}

#[test]
fn redis_store_keeps_commits_across_a_redis_restart() {
    let mut redis = RedisServer::start();
    let backend = Backend::Redis { url: redis.url(), namespace: "contract".into() };
    let mut s = store::open(&backend).unwrap_or_else(|e| panic!("{e}"));
    contract(s.as_mut());
    redis.restart();
    assert_eq!(s.get("b").ok().flatten(), Some(b"3".to_vec()), "the AOF kept it and the connection came back");
}

#[test]
fn redis_outage_buffers_commits_and_catches_up() {
    let mut redis = RedisServer::start();
    let backend = Backend::Redis { url: redis.url(), namespace: "outage".into() };
    let mut s = store::open(&backend).unwrap_or_else(|e| panic!("{e}"));
    s.commit(vec![Write::Put("k".into(), b"before".to_vec())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.outages(), 0);
    redis.kill();
    s.commit(vec![Write::Put("k".into(), b"during".to_vec())]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.buffered(), 1, "kept in memory while Redis is away");
    assert_eq!(s.outages(), 1, "the outage is counted once, for the metrics");
    redis.restart();
    // The connection manager reconnects on the first command after the restart; a few
    // tries at most, each bounded by the store's own timeouts.
    let synced = (0..10).any(|_| s.sync().is_ok());
    assert!(synced, "buffered writes never reached Redis");
    assert_eq!(s.buffered(), 0);
    assert_eq!(s.get("k").ok().flatten(), Some(b"during".to_vec()));
    assert_eq!(s.outages(), 1);
}

/// Point 9 of the containment issue: an outage of any length holds one checkpoint and the
/// journal since, not every commit. A thousand checkpoints of 10 KB, each with a journal
/// entry written before it and deleted by it, as the engine writes them: 20 MB buffered
/// before, one checkpoint's worth now; and once Redis is back, the state is the last one.
#[test]
fn a_redis_outage_buffers_the_latest_state_not_every_commit() {
    let mut redis = RedisServer::start();
    let backend = Backend::Redis { url: redis.url(), namespace: "folded".into() };
    let mut s = store::open(&backend).unwrap_or_else(|e| panic!("{e}"));
    redis.kill();
    for n in 0..1_000u32 {
        s.commit(vec![Write::Put("journal:1".into(), vec![1; 100])]).unwrap_or_else(|e| panic!("{e}"));
        let mut checkpoint = n.to_le_bytes().to_vec();
        checkpoint.resize(10_000, 7);
        s.commit(vec![Write::Put("checkpoint".into(), checkpoint), Write::Delete("journal:1".into())]).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(s.buffered(), 2_000, "every commit was accepted");
    assert!(s.buffered_bytes() <= 10_100, "{} bytes held for 2,000 commits", s.buffered_bytes());
    redis.restart();
    let synced = (0..10).any(|_| s.sync().is_ok());
    assert!(synced, "buffered writes never reached Redis");
    assert_eq!(s.buffered(), 0);
    assert_eq!(s.get("checkpoint").ok().flatten().map(|c| c[..4].to_vec()), Some(999u32.to_le_bytes().to_vec()));
    assert_eq!(s.get("journal:1").ok(), Some(None), "the delete that followed the put is what was applied");
}
