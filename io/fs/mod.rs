//! File-system operations on the blocking pool: path functions ([`read`],
//! [`write()`], [`create_dir`], [`remove_file`], [`rename`], [`metadata`], [`copy`],
//! ...), [`OpenOptions`] and [`File`] (with the `futures-io` traits), and [`read_dir`]
//! (a [`ReadDir`] that is also a `Stream`).
//!
//! # Cancellation
//!
//! Every operation is a checkpoint **on entry**: a cancelled caller gets `Cancelled`
//! (as an `io::Error`) and nothing is touched. What happens to a cancel that arrives
//! while the operation runs on a pool thread depends on whether an object can keep
//! the result:
//!
//! * **Path functions** (everything taking a path, and opening a file) run to
//!   completion and return their result even if a cancellation arrives meanwhile: no
//!   object is left to hold the result of a detached job, so returning `Cancelled`
//!   would leave the caller not knowing whether the directory was created or the file
//!   removed. The cancellation then fails the caller's next checkpoint. (Trio makes
//!   the same choice for its path functions.) A long one (`remove_dir_all` of a large
//!   tree, `copy` of a large file) therefore delays a deadline until it is done; run it
//!   through [`spawn_blocking`](crate::io::spawn_blocking) to be woken at once instead,
//!   detaching it.
//! * **[`File`] and [`ReadDir`]** keep the job in flight: a cancel wakes the waiting
//!   operation at once, and the job's result waits in the object for the next
//!   operation — read bytes and directory entries are returned by the next read,
//!   accepted writes are written. [`File`]'s doc says exactly what each operation
//!   leaves behind.
//!
//! Dropping a future (instead of cancelling) has the same effect: the job finishes in
//! the background, and a later operation on the same object waits for it first.

mod dir;
mod file;

use std::io;
use std::path::{Path, PathBuf};

use super::blocking::run_to_completion;

pub use dir::{DirEntry, ReadDir, read_dir};
pub use file::File;

/// Reads the whole file at `path`.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-fsread-{}", std::process::id()));
///     fs::write(&path, b"contents").await.unwrap();
///     assert_eq!(fs::read(&path).await.unwrap(), b"contents");
///     let missing = fs::read("/nonexistent/file").await.unwrap_err();
///     assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    run_to_completion(move || std::fs::read(path)).await?
}

/// Writes `contents` to the file at `path`, creating or truncating it.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-fswrite-{}", std::process::id()));
///     fs::write(&path, "text").await.unwrap();
///     assert_eq!(std::fs::read(&path).unwrap(), b"text");
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_vec();
    run_to_completion(move || std::fs::write(path, contents)).await?
}

/// Runs a path function on the pool: a checkpoint on entry, then it finishes.
async fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    run_to_completion(f).await?
}

/// Reads the whole file at `path` as UTF-8 text (an `InvalidData` error otherwise).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-rts-{}", std::process::id()));
///     fs::write(&path, "héllo").await.unwrap();
///     assert_eq!(fs::read_to_string(&path).await.unwrap(), "héllo");
///     fs::write(&path, [0xff, 0xfe]).await.unwrap();
///     let bad = fs::read_to_string(&path).await.unwrap_err();
///     assert_eq!(bad.kind(), std::io::ErrorKind::InvalidData);
///     fs::remove_file(&path).await.unwrap();
/// });
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_to_string(path)).await
}

/// Creates the directory `path` (its parent must exist; an `AlreadyExists` error if
/// `path` does).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-mkdir-{}", std::process::id()));
///     fs::create_dir(&dir).await.unwrap();
///     let again = fs::create_dir(&dir).await.unwrap_err();
///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
///     fs::remove_dir(&dir).await.unwrap();
/// });
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::create_dir(path)).await
}

/// Creates the directory `path` and every missing parent; `Ok` if it already exists.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let top = std::env::temp_dir().join(format!("sr-doc-mkdirs-{}", std::process::id()));
///     fs::create_dir_all(top.join("a/b/c")).await.unwrap();
///     assert!(fs::metadata(top.join("a/b/c")).await.unwrap().is_dir());
///     fs::remove_dir_all(&top).await.unwrap();
/// });
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::create_dir_all(path)).await
}

/// Removes the file (or symbolic link) at `path`.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-rm-{}", std::process::id()));
///     fs::write(&path, b"x").await.unwrap();
///     fs::remove_file(&path).await.unwrap();
///     let gone = fs::remove_file(&path).await.unwrap_err();
///     assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
/// });
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_file(path)).await
}

/// Removes the empty directory at `path`.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-rmdir-{}", std::process::id()));
///     fs::create_dir_all(dir.join("child")).await.unwrap();
///     assert!(fs::remove_dir(&dir).await.is_err(), "not empty");
///     fs::remove_dir(dir.join("child")).await.unwrap();
///     fs::remove_dir(&dir).await.unwrap();
/// });
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir(path)).await
}

/// Removes the directory at `path` and everything in it (symbolic links are removed,
/// not followed). Runs to completion once started (see the [module doc](self)).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-rmall-{}", std::process::id()));
///     fs::create_dir_all(dir.join("a/b")).await.unwrap();
///     fs::write(dir.join("a/b/f"), b"x").await.unwrap();
///     fs::remove_dir_all(&dir).await.unwrap();
///     assert!(fs::metadata(&dir).await.is_err());
/// });
/// ```
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir_all(path)).await
}

/// Renames `from` to `to`, replacing `to` if it is a file (on the same file system).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let tmp = std::env::temp_dir();
///     let (a, b) = (
///         tmp.join(format!("sr-doc-mv-a-{}", std::process::id())),
///         tmp.join(format!("sr-doc-mv-b-{}", std::process::id())),
///     );
///     fs::write(&a, b"moved").await.unwrap();
///     fs::rename(&a, &b).await.unwrap();
///     assert_eq!(fs::read(&b).await.unwrap(), b"moved");
///     assert!(fs::metadata(&a).await.is_err());
///     fs::remove_file(&b).await.unwrap();
/// });
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    on_pool(move || std::fs::rename(from, to)).await
}

/// The metadata of `path`, following symbolic links.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     assert!(fs::metadata(std::env::temp_dir()).await.unwrap().is_dir());
///     assert!(fs::metadata("/nonexistent/path").await.is_err());
/// });
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::metadata(path)).await
}

/// The metadata of `path` itself: a symbolic link is not followed.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let link = std::env::temp_dir().join(format!("sr-doc-lmeta-{}", std::process::id()));
///     std::os::unix::fs::symlink("/nonexistent/target", &link).unwrap();
///     assert!(fs::symlink_metadata(&link).await.unwrap().file_type().is_symlink());
///     assert!(fs::metadata(&link).await.is_err(), "the target is missing");
///     fs::remove_file(&link).await.unwrap();
/// });
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::symlink_metadata(path)).await
}

/// Copies the contents (and permissions) of the file `from` to `to`, creating or
/// truncating `to`; returns the number of bytes copied. Runs to completion once
/// started (see the [module doc](self)).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let tmp = std::env::temp_dir();
///     let (a, b) = (
///         tmp.join(format!("sr-doc-cp-a-{}", std::process::id())),
///         tmp.join(format!("sr-doc-cp-b-{}", std::process::id())),
///     );
///     fs::write(&a, b"copied").await.unwrap();
///     assert_eq!(fs::copy(&a, &b).await.unwrap(), 6);
///     assert_eq!(fs::read(&b).await.unwrap(), b"copied");
///     fs::remove_file(&a).await.unwrap();
///     fs::remove_file(&b).await.unwrap();
/// });
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    on_pool(move || std::fs::copy(from, to)).await
}

/// The absolute path of `path` with every symbolic link, `.` and `..` resolved (the
/// path must exist).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let p = fs::canonicalize("/tmp/../tmp/.").await.unwrap();
///     assert_eq!(p, std::fs::canonicalize("/tmp").unwrap());
///     assert!(fs::canonicalize("/nonexistent/path").await.is_err());
/// });
/// ```
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::canonicalize(path)).await
}

/// The target of the symbolic link at `path` (not resolved further).
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let link = std::env::temp_dir().join(format!("sr-doc-rlink-{}", std::process::id()));
///     std::os::unix::fs::symlink("some/target", &link).unwrap();
///     assert_eq!(fs::read_link(&link).await.unwrap(), std::path::Path::new("some/target"));
///     fs::remove_file(&link).await.unwrap();
/// });
/// ```
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_link(path)).await
}

/// Makes `link` a new name (hard link) for the existing file `original`.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let tmp = std::env::temp_dir();
///     let (a, b) = (
///         tmp.join(format!("sr-doc-hl-a-{}", std::process::id())),
///         tmp.join(format!("sr-doc-hl-b-{}", std::process::id())),
///     );
///     fs::write(&a, b"shared").await.unwrap();
///     fs::hard_link(&a, &b).await.unwrap();
///     fs::remove_file(&a).await.unwrap();
///     assert_eq!(fs::read(&b).await.unwrap(), b"shared");
///     fs::remove_file(&b).await.unwrap();
/// });
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref().to_owned(), link.as_ref().to_owned());
    on_pool(move || std::fs::hard_link(original, link)).await
}

/// Options for opening a file, as [`std::fs::OpenOptions`]: set them, then
/// [`open`](OpenOptions::open) on the pool.
///
/// ```
/// use scope_runtime::io::fs::{self, OpenOptions};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-oo-{}", std::process::id()));
///     fs::write(&path, b"log:").await.unwrap();
///     let mut f = OpenOptions::new().append(true).open(&path).await.unwrap();
///     f.write_all(b" more").await.unwrap();
///     assert_eq!(fs::read(&path).await.unwrap(), b"log: more");
///     // create_new refuses an existing file.
///     let e = OpenOptions::new().write(true).create_new(true).open(&path).await.unwrap_err();
///     assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
///     fs::remove_file(&path).await.unwrap();
/// });
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// No access mode set: set [`read`](Self::read), [`write`](Self::write) or
    /// [`append`](Self::append) before opening (otherwise `open` fails with
    /// `InvalidInput`).
    ///
    /// ```
    /// use scope_runtime::io::fs::OpenOptions;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let e = OpenOptions::new().open("/dev/null").await.unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.read(true);
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing (at the position, which starts at 0).
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.write(true).create(true);
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Open for appending: every write goes to the end of the file.
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.append(true).create(true);
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate an existing file to length 0 (needs `write`).
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.write(true).truncate(true);
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it does not exist (needs `write` or `append`).
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.write(true).create(true);
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists (atomically; needs
    /// `write` or `append`; `create` and `truncate` are then ignored).
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.write(true).create_new(true);
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// The permission bits of a file this creates (before the umask); default `0o666`.
    ///
    /// ```
    /// use scope_runtime::io::fs::{self, OpenOptions};
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-mode-{}", std::process::id()));
    ///     let _ = fs::remove_file(&path).await;
    ///     OpenOptions::new().write(true).create(true).mode(0o600).open(&path).await.unwrap();
    ///     let mode = fs::metadata(&path).await.unwrap().permissions().mode();
    ///     assert_eq!(mode & 0o777, 0o600);
    ///     fs::remove_file(&path).await.unwrap();
    /// });
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::mode(&mut self.0, mode);
        self
    }

    /// Extra `open(2)` flags (e.g. `O_NOFOLLOW`), or-ed with those the options set;
    /// the access-mode bits are ignored.
    ///
    /// ```
    /// let mut o = scope_runtime::io::fs::OpenOptions::new();
    /// o.read(true).custom_flags(0);
    /// ```
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut self.0, flags);
        self
    }

    /// Opens `path` with these options, on the pool (runs to completion once started,
    /// like the path functions).
    ///
    /// ```
    /// use scope_runtime::io::fs::OpenOptions;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let f = OpenOptions::new().read(true).open("/dev/null").await;
    ///     assert!(f.is_ok());
    ///     let missing = OpenOptions::new().read(true).open("/nonexistent/f").await;
    ///     assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        file::open_with(self.0.clone(), path.as_ref()).await
    }
}
