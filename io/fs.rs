//! File-system helpers on the blocking pool: [`read`], [`write()`] and [`File`].
//!
//! # Cancellation
//!
//! Every operation is a checkpoint **on entry**: a cancelled caller gets `Cancelled`
//! (as an `io::Error`) and nothing is read or written. Once an operation has started
//! on a pool thread it runs to completion and the call returns its result, even if a
//! cancellation arrives meanwhile — a disk read or write cannot be interrupted, and
//! reporting `Cancelled` after it happened would lose the bytes or hide the write. The
//! cancellation then fails the caller's next checkpoint. (This is Trio's choice for
//! its file wrappers too.)
//!
//! If the future is dropped instead, the operation still finishes in the
//! background; a later operation on the same [`File`] waits for it, so the file
//! position stays consistent.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::blocking::run_to_completion;

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

/// An open file whose operations run on the blocking pool. See the [module doc](self)
/// for cancellation.
///
/// ```
/// use scope_runtime::io::fs::File;
/// use std::io::SeekFrom;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-file-{}", std::process::id()));
///     let mut f = File::create(&path).await.unwrap();
///     f.write_all(b"hello world").await.unwrap();
///     f.seek(SeekFrom::Start(6)).await.unwrap();
///     let mut buf = [0u8; 5];
///     assert_eq!(f.read(&mut buf).await.unwrap(), 5);
///     assert_eq!(&buf, b"world");
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct File {
    /// Shared with the operation running on the pool; its lock orders operations.
    std: Arc<Mutex<std::fs::File>>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.std.try_lock() {
            Some(file) => f.debug_tuple("File").field(&*file).finish(),
            None => f.write_str("File(<busy>)"),
        }
    }
}

impl File {
    /// Opens `path` for reading.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let err = File::open("/nonexistent/file").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        let f = run_to_completion(move || std::fs::File::open(path)).await??;
        Ok(File::from_std(f))
    }

    /// Creates (or truncates) `path` and opens it for writing and reading.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-create-{}", std::process::id()));
    ///     let f = File::create(&path).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 0);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        let f = run_to_completion(move || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        })
        .await??;
        Ok(File::from_std(f))
    }

    /// Wraps an open standard-library file.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut f = File::from_std(std::fs::File::open("/dev/null").unwrap());
    ///     let mut buf = [0u8; 4];
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 0);
    /// });
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File {
            std: Arc::new(Mutex::new(file)),
        }
    }

    /// Runs `op` on the file on the pool (after any operation still running).
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let file = self.std.clone();
        run_to_completion(move || op(&mut file.lock())).await?
    }

    /// Reads into `buf` once; `Ok(0)` is end-of-file.
    ///
    /// ```
    /// use scope_runtime::io::fs::{self, File};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fread-{}", std::process::id()));
    ///     fs::write(&path, b"abc").await.unwrap();
    ///     let mut f = File::open(&path).await.unwrap();
    ///     let mut buf = [0u8; 8];
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 3);
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 0);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let data = self
            .run(move |f| {
                let mut tmp = vec![0u8; len];
                let n = f.read(&mut tmp)?;
                tmp.truncate(n);
                Ok(tmp)
            })
            .await?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// Reads to end-of-file, appending to `buf`; returns how many bytes were appended.
    ///
    /// ```
    /// use scope_runtime::io::fs::{self, File};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-frte-{}", std::process::id()));
    ///     fs::write(&path, b"everything").await.unwrap();
    ///     let mut f = File::open(&path).await.unwrap();
    ///     let mut buf = Vec::new();
    ///     assert_eq!(f.read_to_end(&mut buf).await.unwrap(), 10);
    ///     assert_eq!(buf, b"everything");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let data = self
            .run(|f| {
                let mut v = Vec::new();
                f.read_to_end(&mut v)?;
                Ok(v)
            })
            .await?;
        buf.extend_from_slice(&data);
        Ok(data.len())
    }

    /// Writes some of `buf` once; returns how much was written.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fwrite-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     assert_eq!(f.write(b"data").await.unwrap(), 4);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf.to_vec();
        self.run(move |f| f.write(&data)).await
    }

    /// Writes all of `buf` (one pool job; see the [module doc](self): once started it
    /// finishes, so there is no partial result to report on cancellation).
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fwa-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(&[7u8; 100_000]).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 100_000);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let data = buf.to_vec();
        self.run(move |f| f.write_all(&data)).await
    }

    /// Moves the file position; returns the new position from the start.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    /// use std::io::SeekFrom;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-seek-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"0123456789").await.unwrap();
    ///     assert_eq!(f.seek(SeekFrom::End(-3)).await.unwrap(), 7);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run(move |f| f.seek(pos)).await
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-sync-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"durable").await.unwrap();
    ///     f.sync_all().await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn sync_all(&self) -> io::Result<()> {
        self.run(|f| f.sync_all()).await
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-setlen-{}", std::process::id()));
    ///     let f = File::create(&path).await.unwrap();
    ///     f.set_len(42).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 42);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        self.run(move |f| f.set_len(size)).await
    }

    /// The file's metadata.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let f = File::open("/dev/null").await.unwrap();
    ///     assert!(!f.metadata().await.unwrap().is_dir());
    /// });
    /// ```
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.run(|f| f.metadata()).await
    }
}
