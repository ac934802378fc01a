//! The embedded backend: one redb file, one table, fully durable commits (redb syncs to
//! disk before a commit returns).

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::{StateStore, StoreError, Write};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

pub struct Embedded {
    path: PathBuf,
    db: Database,
}

impl Embedded {
    /// Opens or creates the file, and its folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |reason: String| StoreError::Backend { backend: format!("embedded store {}", path.display()), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| fail(e.to_string()))?;
        Ok(Embedded { path: path.to_path_buf(), db })
    }

    fn fail(&self, reason: impl ToString) -> StoreError {
        StoreError::Backend { backend: self.describe(), reason: reason.to_string() }
    }
}

impl StateStore for Embedded {
    fn outages(&self) -> u64 {
        0
    }

    fn commit(&mut self, writes: Vec<Write>) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = tx.open_table(TABLE).map_err(|e| self.fail(e))?;
            for write in &writes {
                match write {
                    Write::Put(key, value) => table.insert(key.as_str(), value.as_slice()).map(|_| ()),
                    Write::Delete(key) => table.remove(key.as_str()).map(|_| ()),
                }
                .map_err(|e| self.fail(e))?;
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = match tx.open_table(TABLE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.fail(e)),
        };
        Ok(table.get(key).map_err(|e| self.fail(e))?.map(|v| v.value().to_vec()))
    }

    fn buffered(&self) -> usize {
        0
    }

    fn buffered_bytes(&self) -> usize {
        0
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("embedded store {}", self.path.display())
    }
}
