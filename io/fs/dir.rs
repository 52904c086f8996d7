//! [`read_dir`]: directory entries fetched in batches on the blocking pool.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use super::super::blocking::{BlockingHandle, spawn_blocking};
use super::on_pool;

/// Entries one pool job reads.
const BATCH: usize = 64;

type Batch = VecDeque<io::Result<DirEntry>>;

enum State {
    /// `iter` is `None` once the directory is exhausted.
    Idle {
        iter: Option<std::fs::ReadDir>,
        batch: Batch,
    },
    Busy(BlockingHandle<(Option<std::fs::ReadDir>, Batch)>),
}

/// Opens the directory `path` for listing (on the pool; like the other path
/// functions, the open runs to completion once started).
///
/// The entries come in the order the OS gives them, without `.` and `..`.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-readdir-{}", std::process::id()));
///     fs::create_dir_all(&dir).await.unwrap();
///     fs::write(dir.join("a"), b"").await.unwrap();
///     fs::write(dir.join("b"), b"").await.unwrap();
///     let mut names = Vec::new();
///     let mut entries = fs::read_dir(&dir).await.unwrap();
///     while let Some(entry) = entries.next_entry().await.unwrap() {
///         names.push(entry.file_name().into_string().unwrap());
///     }
///     names.sort();
///     assert_eq!(names, ["a", "b"]);
///     fs::remove_dir_all(&dir).await.unwrap();
/// });
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let iter = on_pool(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: State::Idle {
            iter: Some(iter),
            batch: VecDeque::new(),
        },
    })
}

/// The entries of a directory, from [`read_dir`]: call
/// [`next_entry`](ReadDir::next_entry), or use it as a `futures` `Stream` of
/// `io::Result<DirEntry>`.
///
/// Entries are read in batches of 64 by one pool job, then handed out one by one.
/// Each `next_entry` is a checkpoint; cancelled while a batch is being read, it fails
/// with `Cancelled` at once and the batch is kept for the next call: no entry is
/// skipped. As a stream, a cancellation is an item (`Some(Err(..))` carrying
/// `Cancelled`), not the end.
///
/// ```
/// use futures::TryStreamExt;
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-rdstream-{}", std::process::id()));
///     fs::create_dir_all(&dir).await.unwrap();
///     for i in 0..100 {
///         fs::write(dir.join(i.to_string()), b"").await.unwrap();
///     }
///     let entries: Vec<fs::DirEntry> = fs::read_dir(&dir).await.unwrap().try_collect().await.unwrap();
///     assert_eq!(entries.len(), 100);
///     fs::remove_dir_all(&dir).await.unwrap();
/// });
/// ```
pub struct ReadDir {
    state: State,
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (busy, buffered) = match &self.state {
            State::Idle { batch, .. } => (false, batch.len()),
            State::Busy(_) => (true, 0),
        };
        f.debug_struct("ReadDir")
            .field("busy", &busy)
            .field("buffered", &buffered)
            .finish()
    }
}

impl ReadDir {
    /// The next entry, `Ok(None)` at the end. An error reading one entry is returned
    /// once, and the listing goes on after it.
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let dir = std::env::temp_dir().join(format!("sr-doc-nextentry-{}", std::process::id()));
    ///     fs::create_dir_all(&dir).await.unwrap();
    ///     let mut entries = fs::read_dir(&dir).await.unwrap();
    ///     assert!(entries.next_entry().await.unwrap().is_none(), "empty");
    ///     assert!(entries.next_entry().await.unwrap().is_none(), "and stays ended");
    ///     fs::remove_dir(&dir).await.unwrap();
    /// });
    /// ```
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// The poll form of [`next_entry`](ReadDir::next_entry).
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut entries = fs::read_dir("/").await.unwrap();
    ///     let first = std::future::poll_fn(|cx| entries.poll_next_entry(cx)).await;
    ///     assert!(first.unwrap().is_some());
    /// });
    /// ```
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        crate::check_cancelled()?;
        loop {
            match &mut self.state {
                State::Idle { iter, batch } => {
                    if let Some(entry) = batch.pop_front() {
                        return Poll::Ready(entry.map(Some));
                    }
                    let Some(mut it) = iter.take() else {
                        return Poll::Ready(Ok(None));
                    };
                    let mut batch = std::mem::take(batch);
                    self.state = State::Busy(spawn_blocking(move || {
                        for _ in 0..BATCH {
                            match it.next() {
                                Some(r) => batch.push_back(r.map(DirEntry::new)),
                                None => return (None, batch),
                            }
                        }
                        (Some(it), batch)
                    }));
                }
                State::Busy(handle) => {
                    let (iter, batch) = ready!(Pin::new(handle).poll(cx))?;
                    self.state = State::Idle { iter, batch };
                }
            }
        }
    }
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx).map(|r| r.transpose())
    }
}

/// One entry of a [`ReadDir`]: its name and path, and (on the pool) its type and
/// metadata. The type is read with the batch, so [`file_type`](DirEntry::file_type)
/// rarely needs the pool.
///
/// ```
/// use scope_runtime::io::fs;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-direntry-{}", std::process::id()));
///     fs::create_dir_all(dir.join("sub")).await.unwrap();
///     let e = fs::read_dir(&dir).await.unwrap().next_entry().await.unwrap().unwrap();
///     assert_eq!(e.file_name(), "sub");
///     assert_eq!(e.path(), dir.join("sub"));
///     assert!(e.file_type().await.unwrap().is_dir());
///     assert!(e.metadata().await.unwrap().is_dir());
///     fs::remove_dir_all(&dir).await.unwrap();
/// });
/// ```
pub struct DirEntry {
    path: PathBuf,
    name: OsString,
    file_type: Option<std::fs::FileType>,
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path).finish()
    }
}

impl DirEntry {
    /// On a pool thread: the entry's name, path and (usually free) type.
    fn new(e: std::fs::DirEntry) -> DirEntry {
        DirEntry {
            path: e.path(),
            name: e.file_name(),
            file_type: e.file_type().ok(),
        }
    }

    /// The full path: the directory given to [`read_dir`] joined with the name.
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut entries = fs::read_dir("/").await.unwrap();
    ///     let e = entries.next_entry().await.unwrap().unwrap();
    ///     assert!(e.path().starts_with("/"));
    /// });
    /// ```
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The name within its directory.
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut entries = fs::read_dir("/").await.unwrap();
    ///     let e = entries.next_entry().await.unwrap().unwrap();
    ///     assert_eq!(Some(e.file_name().as_os_str()), e.path().file_name());
    /// });
    /// ```
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The entry's type, not following a symbolic link (known from the listing on
    /// most file systems; otherwise read on the pool).
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let dir = std::env::temp_dir().join(format!("sr-doc-ftype-{}", std::process::id()));
    ///     fs::create_dir_all(&dir).await.unwrap();
    ///     std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
    ///     let e = fs::read_dir(&dir).await.unwrap().next_entry().await.unwrap().unwrap();
    ///     assert!(e.file_type().await.unwrap().is_symlink(), "not followed");
    ///     fs::remove_dir_all(&dir).await.unwrap();
    /// });
    /// ```
    pub async fn file_type(&self) -> io::Result<std::fs::FileType> {
        if let Some(t) = self.file_type {
            return Ok(t);
        }
        let path = self.path.clone();
        on_pool(move || std::fs::symlink_metadata(path).map(|m| m.file_type())).await
    }

    /// The entry's metadata, not following a symbolic link (on the pool).
    ///
    /// ```
    /// use scope_runtime::io::fs;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut entries = fs::read_dir("/").await.unwrap();
    ///     let e = entries.next_entry().await.unwrap().unwrap();
    ///     let m = e.metadata().await.unwrap();
    ///     assert_eq!(m.file_type(), e.file_type().await.unwrap());
    /// });
    /// ```
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let path = self.path.clone();
        on_pool(move || std::fs::symlink_metadata(path)).await
    }
}
