//! Opening a file that came from outside (a config, a strategy, a trades file, a watched
//! path): only a regular file is opened, since a FIFO would block the reader forever and a
//! link to /dev/zero never end, and a whole-file read stops at the caller's cap.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Opens `path` if it is a regular file. The type is checked before opening (opening a
/// FIFO blocks until a writer comes) and again on the open handle (the path may have been
/// replaced in between).
pub fn open_regular(path: &Path) -> Result<File, String> {
    let regular = |meta: std::fs::Metadata| if meta.is_file() { Ok(()) } else { Err("not a regular file".to_string()) };
    regular(std::fs::metadata(path).map_err(|e| e.to_string())?)?;
    let file = File::open(path).map_err(|e| e.to_string())?;
    regular(file.metadata().map_err(|e| e.to_string())?)?;
    Ok(file)
}

/// Reads a regular file of at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("more than the {max} bytes allowed"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_devices_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_regular(dir.path(), 10).err().as_deref(), Some("not a regular file"));
        assert_eq!(read_regular(Path::new("/dev/zero"), 10).err().as_deref(), Some("not a regular file"));
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789A").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_regular(&file, 10).err().as_deref(), Some("more than the 10 bytes allowed"));
        assert_eq!(read_regular(&file, 11).ok().map(|b| b.len()), Some(11));
    }
}
