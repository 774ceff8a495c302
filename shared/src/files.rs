//! Files that may hold a secret, private to the user Ferry runs as:
//! folders 0700, files 0600 (on Unix; elsewhere the platform's defaults).

use std::io::Write;
use std::path::Path;

/// Creates `dir` and any missing parents, each new one 0700. A folder that
/// exists keeps its mode: it may be the operator's (`FERRY_DATA_DIR=/tmp`).
pub fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// [`create_private_dirs`], then `dir` itself made 0700 even if it existed
/// (left by an older version): for a folder only Ferry writes in.
pub fn own_private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dirs(dir)?;
    #[cfg(unix)]
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Writes `bytes` to `path`, made 0600 before the first byte is written,
/// a file that existed too.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_the_users_alone() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dirs(&nested).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&nested)), (0o700, 0o700));

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dirs(&open).unwrap();
        assert_eq!(mode(&open), 0o755, "an existing folder keeps its mode");
        own_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700, "unless it is Ferry's own");

        let file = dir.path().join("f");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&file, b"token").unwrap();
        assert_eq!((mode(&file), std::fs::read_to_string(&file).unwrap().as_str()), (0o600, "token"));
        write_private(&dir.path().join("new"), b"x").unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o600);
    }
}
