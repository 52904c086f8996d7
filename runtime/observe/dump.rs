//! The task dump: a snapshot of the live tree of tasks, task groups and cancel scopes,
//! and of what every blocked task waits on.
//!
//! [`snapshot`] reads the status tree (`CancelTree::view`) and the task slab
//! (`Core::task_rows`); it takes only shared borrows (`try_borrow`: a borrow held
//! elsewhere makes the dump show less, never panic), runs no user code and changes
//! nothing. A task's place in the tree is its root node: a top-level task's root has no
//! parent, a group child's root hangs under its group's node. A task that never needed
//! a root node (no scope entered, no wait registered) is a top-level leaf.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{WaitingOn, secs_from, write_until};
use crate::runtime::cancel::{CancelReason, NO_NODE, NodeKey};
use crate::runtime::core::{Core, TaskRow, with_core};
use crate::runtime::task::{Shared, TaskId};

/// A snapshot of a runtime's live tree: every task, task group and cancel scope, and
/// what each blocked task waits on. Taken by [`dump`](crate::dump) (inside the
/// runtime), [`Runtime::dump`](crate::Runtime::dump) (between or inside `block_on`
/// calls) or a [`DumpHandle`] (from any thread).
///
/// # Two forms
///
/// * [`Display`](fmt::Display) prints an indented tree for a person. Each line is a
///   task (`task #3 `name` (spawned at file:line:col): state`), a task group or a cancel
///   scope (with its flags: `shielded`, `deadline in 1.500s`, `cancelled (reason)`).
///   Children are drawn below their parent, oldest first. The layout may change
///   between versions: read it, don't parse it.
/// * [`to_json`](Dump::to_json) is the stable, machine-readable form (documented
///   there), and the fields of [`TaskDump`] / [`ScopeDump`] give the same data as
///   values.
///
/// `Dump` is `Send`: a [`DumpHandle`] brings it to another thread.
///
/// ```
/// use scope_runtime::{Runtime, task_group, sleep};
/// use std::time::Duration;
///
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     task_group(|tg| async move {
///         tg.spawn_named("sleeper", async {
///             sleep(Duration::from_secs(5)).await?;
///             Ok(())
///         });
///         scope_runtime::yield_now().await; // let the child reach its sleep
///         let dump = scope_runtime::dump();
///         let text = dump.to_string();
///         assert!(text.contains("`sleeper`"), "{text}");
///         assert!(text.contains("waiting on sleep, 5.000s left"), "{text}");
///         tg.cancel();
///         Ok(())
///     })
///     .await
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dump {
    now: Instant,
    paused_clock: bool,
    tasks: usize,
    roots: Vec<DumpNode>,
}

/// One entry of the tree: a task, or a scope or task group entered by a task.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DumpNode {
    /// A task (with the scopes it entered below it).
    Task(TaskDump),
    /// A cancel scope or task group (with nested scopes and, for a group, its children
    /// below it).
    Scope(ScopeDump),
}

/// What a task is doing at the moment of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Being polled right now (the task that asked for the dump).
    Running,
    /// Woken and waiting for its turn in the ready queue.
    Ready,
    /// Not scheduled: blocked on what [`TaskDump::waits`] says (if anything: an empty
    /// list means it waits on something the runtime does not know, or for its task
    /// group's children).
    Waiting,
}

/// One blocked operation: what it waits on, and whether a cancellation has already
/// woken it (it fails with `Cancelled` when its task runs next).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wait {
    /// What it waits on.
    pub on: WaitingOn,
    /// A cancellation woke it; it has not run since.
    pub woken_by_cancel: bool,
    /// For a wait on a socket: what it is, `peer ADDR` (connected), `local ADDR` (a
    /// listener, a UDP socket) or `unix socket PATH`, read when the dump was taken.
    pub detail: Option<String>,
}

impl Wait {
    fn new(on: WaitingOn, woken_by_cancel: bool) -> Wait {
        let detail = match on {
            WaitingOn::Readable { fd } | WaitingOn::Writable { fd } => super::describe_fd(fd),
            _ => None,
        };
        Wait {
            on,
            woken_by_cancel,
            detail,
        }
    }
}

/// A task in a [`Dump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskDump {
    /// The task's id ([`TaskInfo::id`](crate::TaskInfo::id)): unique for the runtime's
    /// lifetime, in spawn order.
    pub id: u64,
    /// Its name, if it was spawned with one (`main` for the `block_on` task).
    pub name: Option<Arc<str>>,
    /// Where it was spawned (`spawn`, `spawn_named`, `TaskGroup::spawn`, `start`,
    /// `block_on`).
    pub spawned_at: &'static Location<'static>,
    /// Running, ready, or waiting.
    pub state: TaskState,
    /// Its cancel count ([`TaskRef::cancelling`](crate::TaskRef::cancelling)).
    pub cancelling: u32,
    /// The operations it is blocked in, at its top level and in every scope it entered
    /// (usually one; several under a `join_all` or `select`).
    pub waits: Vec<Wait>,
    /// The scopes and task groups it entered, outermost first.
    pub children: Vec<DumpNode>,
}

/// A cancel scope or task group in a [`Dump`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScopeDump {
    /// A task group's scope (its children are below it) rather than a plain cancel
    /// scope.
    pub group: bool,
    /// Cancel was called on it (or its deadline passed).
    pub cancel_called: bool,
    /// Code inside it is cancelled: by itself, or by an enclosing scope its shield does
    /// not hide.
    pub cancelled: bool,
    /// Why it was cancelled (when `cancel_called`).
    pub reason: Option<CancelReason>,
    /// It shields its body from enclosing cancellations.
    pub shield: bool,
    /// Its deadline, if it has one.
    pub deadline: Option<Instant>,
    /// The operations its task is blocked in directly inside this scope.
    pub waits: Vec<Wait>,
    /// Nested scopes and, for a group, its child tasks, oldest first.
    pub children: Vec<DumpNode>,
}

/// Takes a [`Dump`] of the runtime this code runs on.
///
/// # Panics
///
/// Outside a runtime (use [`Runtime::dump`](crate::Runtime::dump) or a
/// [`DumpHandle`] there).
///
/// ```
/// # let rt = scope_runtime::Runtime::new()?;
/// rt.block_on(async {
///     let dump = scope_runtime::dump();
///     assert_eq!(dump.task_count(), 1); // the block_on task, running
///     assert!(dump.to_string().contains("`main`"));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn dump() -> Dump {
    with_core(|core| snapshot(core))
}

impl Dump {
    /// The runtime's time when the dump was taken (time left until deadlines and
    /// sleep ends counts from it).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// How many tasks the runtime had.
    pub fn task_count(&self) -> usize {
        self.tasks
    }

    /// The top of the tree: the top-level tasks (spawned with `spawn`, and the
    /// `block_on` task), in spawn order.
    pub fn roots(&self) -> &[DumpNode] {
        &self.roots
    }

    /// Every task of the tree, depth first (a task before the tasks inside it).
    pub fn tasks(&self) -> Vec<&TaskDump> {
        fn walk<'a>(nodes: &'a [DumpNode], out: &mut Vec<&'a TaskDump>) {
            for n in nodes {
                match n {
                    DumpNode::Task(t) => {
                        out.push(t);
                        walk(&t.children, out);
                    }
                    DumpNode::Scope(s) => walk(&s.children, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.roots, &mut out);
        out
    }

    /// The machine-readable form: one JSON object, stable across versions (fields may
    /// be added, none renamed or removed). Times are seconds from [`now`](Self::now)
    /// as numbers (negative: in the past).
    ///
    /// ```text
    /// { "version": 1, "paused_clock": bool, "tasks": count, "roots": [node] }
    /// node  = task | scope
    /// task  = { "type": "task", "id": n, "name": string|null, "spawned_at": "file:line:col",
    ///           "state": "running"|"ready"|"waiting", "cancelling": n,
    ///           "waits": [wait], "children": [node] }
    /// scope = { "type": "group"|"scope", "cancel_called": bool, "cancelled": bool,
    ///           "reason": string|null, "shield": bool, "deadline_in": secs|null,
    ///           "waits": [wait], "children": [node] }
    /// wait  = { "on": kind, "woken_by_cancel": bool, ...details }
    ///   details: sleep {"ends_in": secs|null}, join {"task": n},
    ///            recv/send {"channel": n}, lock {"mutex": n}, acquire {"semaphore": n},
    ///            notified {"notify": n}, event {"event": n},
    ///            watch/broadcast {"channel": n}, barrier {"barrier": n},
    ///            condition {"condition": n}, rwlock {"rwlock": n},
    ///            readable/writable {"fd": n, "detail": "peer ADDR"|"local ADDR"|null}
    /// ```
    ///
    /// `kind` is [`WaitingOn::kind`].
    ///
    /// ```
    /// # let rt = scope_runtime::Runtime::new()?;
    /// rt.block_on(async {
    ///     let json = scope_runtime::dump().to_json();
    ///     assert!(json.starts_with(r#"{"version":1,"#));
    ///     assert!(json.contains(r#""name":"main""#));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"{{"version":1,"paused_clock":{},"tasks":{},"roots":["#,
            self.paused_clock, self.tasks
        );
        self.json_nodes(&mut out, &self.roots);
        out.push_str("]}");
        out
    }

    fn json_nodes(&self, out: &mut String, nodes: &[DumpNode]) {
        for (i, n) in nodes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match n {
                DumpNode::Task(t) => {
                    let _ = write!(out, r#"{{"type":"task","id":{},"name":"#, t.id);
                    json_opt_str(out, t.name.as_deref());
                    out.push_str(r#","spawned_at":"#);
                    json_str(out, &t.spawned_at.to_string());
                    let state = match t.state {
                        TaskState::Running => "running",
                        TaskState::Ready => "ready",
                        TaskState::Waiting => "waiting",
                    };
                    let _ = write!(
                        out,
                        r#","state":"{state}","cancelling":{},"waits":"#,
                        t.cancelling
                    );
                    self.json_waits(out, &t.waits);
                    out.push_str(r#","children":["#);
                    self.json_nodes(out, &t.children);
                    out.push_str("]}");
                }
                DumpNode::Scope(s) => {
                    let _ = write!(
                        out,
                        r#"{{"type":"{}","cancel_called":{},"cancelled":{},"reason":"#,
                        if s.group { "group" } else { "scope" },
                        s.cancel_called,
                        s.cancelled
                    );
                    json_opt_str(out, s.reason.as_ref().map(|r| r.to_string()).as_deref());
                    let _ = write!(out, r#","shield":{},"deadline_in":"#, s.shield);
                    json_secs(out, s.deadline.map(|d| secs_from(self.now, d)));
                    out.push_str(r#","waits":"#);
                    self.json_waits(out, &s.waits);
                    out.push_str(r#","children":["#);
                    self.json_nodes(out, &s.children);
                    out.push_str("]}");
                }
            }
        }
    }

    fn json_waits(&self, out: &mut String, waits: &[Wait]) {
        out.push('[');
        for (i, w) in waits.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"{{"on":"{}","woken_by_cancel":{}"#,
                w.on.kind(),
                w.woken_by_cancel
            );
            let _ = match w.on {
                WaitingOn::Sleep { until } => {
                    out.push_str(r#","ends_in":"#);
                    json_secs(out, until.map(|t| secs_from(self.now, t)));
                    Ok(())
                }
                WaitingOn::Join { task } => write!(out, r#","task":{task}"#),
                WaitingOn::Recv { channel } | WaitingOn::Send { channel } => {
                    write!(out, r#","channel":{channel}"#)
                }
                WaitingOn::Lock { mutex } => write!(out, r#","mutex":{mutex}"#),
                WaitingOn::Acquire { semaphore } => write!(out, r#","semaphore":{semaphore}"#),
                WaitingOn::Notified { notify } => write!(out, r#","notify":{notify}"#),
                WaitingOn::Event { event } => write!(out, r#","event":{event}"#),
                WaitingOn::Watch { channel } | WaitingOn::Broadcast { channel } => {
                    write!(out, r#","channel":{channel}"#)
                }
                WaitingOn::Barrier { barrier } => write!(out, r#","barrier":{barrier}"#),
                WaitingOn::Condition { condition } => {
                    write!(out, r#","condition":{condition}"#)
                }
                WaitingOn::RwLock { rwlock } => write!(out, r#","rwlock":{rwlock}"#),
                WaitingOn::Readable { fd } | WaitingOn::Writable { fd } => {
                    let _ = write!(out, r#","fd":{fd},"detail":"#);
                    json_opt_str(out, w.detail.as_deref());
                    Ok(())
                }
                WaitingOn::Unknown
                | WaitingOn::Oneshot
                | WaitingOn::BlockingJob
                | WaitingOn::Foreign
                | WaitingOn::AllTasksBlocked => Ok(()),
            };
            out.push('}');
        }
        out.push(']');
    }
}

fn json_secs(out: &mut String, secs: Option<f64>) {
    match secs {
        Some(s) => {
            let _ = write!(out, "{s:.6}");
        }
        None => out.push_str("null"),
    }
}

fn json_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scope_runtime dump: {} task{} ({} clock)",
            self.tasks,
            if self.tasks == 1 { "" } else { "s" },
            if self.paused_clock { "paused" } else { "real" }
        )?;
        let last = self.roots.len().saturating_sub(1);
        for (i, n) in self.roots.iter().enumerate() {
            self.write_node(f, n, "", i == last)?;
        }
        Ok(())
    }
}

impl Dump {
    fn write_node(
        &self,
        f: &mut fmt::Formatter<'_>,
        node: &DumpNode,
        prefix: &str,
        last: bool,
    ) -> fmt::Result {
        f.write_str(prefix)?;
        f.write_str(if last { "└─ " } else { "├─ " })?;
        let children = match node {
            DumpNode::Task(t) => {
                self.write_task(f, t)?;
                &t.children
            }
            DumpNode::Scope(s) => {
                self.write_scope(f, s)?;
                &s.children
            }
        };
        f.write_str("\n")?;
        let inner = format!("{prefix}{}", if last { "   " } else { "│  " });
        let n = children.len();
        for (i, c) in children.iter().enumerate() {
            self.write_node(f, c, &inner, i + 1 == n)?;
        }
        Ok(())
    }

    fn write_task(&self, f: &mut fmt::Formatter<'_>, t: &TaskDump) -> fmt::Result {
        write!(f, "task #{}", t.id)?;
        if let Some(n) = &t.name {
            write!(f, " `{n}`")?;
        }
        write!(f, " (spawned at {}): ", t.spawned_at)?;
        match t.state {
            TaskState::Running => f.write_str("running")?,
            TaskState::Ready => {
                f.write_str("ready to run")?;
                let woken: Vec<&Wait> = t.waits.iter().filter(|w| w.woken_by_cancel).collect();
                if !woken.is_empty() {
                    f.write_str(" (a cancel woke it from: ")?;
                    self.write_waits(f, woken.into_iter(), false)?;
                    f.write_str(")")?;
                }
            }
            TaskState::Waiting if t.waits.is_empty() => {
                if has_own_group_with_children(&t.children) {
                    f.write_str("waiting for its task group's children")?
                } else {
                    f.write_str("waiting (unknown: not a runtime operation)")?
                }
            }
            TaskState::Waiting => {
                f.write_str("waiting on ")?;
                self.write_waits(f, t.waits.iter(), true)?;
            }
        }
        if t.cancelling > 0 {
            write!(f, "; task cancelled (count {})", t.cancelling)?;
        }
        Ok(())
    }

    /// "sleep, 1.500s left and recv on channel #2"; `mark` flags waits a cancel woke.
    fn write_waits<'w>(
        &self,
        f: &mut fmt::Formatter<'_>,
        waits: impl Iterator<Item = &'w Wait>,
        mark: bool,
    ) -> fmt::Result {
        for (i, w) in waits.enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            let mut s = String::new();
            w.on.write(&mut s, self.now)?;
            f.write_str(&s)?;
            if let Some(d) = &w.detail {
                write!(f, " ({d})")?;
            }
            if mark && w.woken_by_cancel {
                f.write_str(" (woken by a cancel)")?;
            }
        }
        Ok(())
    }

    fn write_scope(&self, f: &mut fmt::Formatter<'_>, s: &ScopeDump) -> fmt::Result {
        f.write_str(if s.group {
            "task group"
        } else {
            "cancel scope"
        })?;
        let mut flags = Vec::new();
        if s.shield {
            flags.push("shielded".to_string());
        }
        if let Some(d) = s.deadline {
            let mut text = String::from("deadline ");
            if d >= self.now {
                let _ = write!(text, "in {:.3}s", (d - self.now).as_secs_f64());
            } else {
                let _ = write_until(&mut text, d, self.now);
                text = text.replace("deadline due", "deadline passed");
            }
            flags.push(text);
        }
        match (&s.reason, s.cancel_called, s.cancelled) {
            (Some(r), true, _) => flags.push(format!("cancelled ({r})")),
            (None, true, _) => flags.push("cancelled".to_string()),
            (_, false, true) => flags.push("cancelled by an enclosing scope".to_string()),
            (_, false, false) => {}
        }
        if !flags.is_empty() {
            write!(f, ": {}", flags.join(", "))?;
        }
        Ok(())
    }
}

/// Whether the task's own scopes (not its children's) hold a group with a child task.
fn has_own_group_with_children(nodes: &[DumpNode]) -> bool {
    nodes.iter().any(|n| match n {
        DumpNode::Scope(s) => {
            (s.group && s.children.iter().any(|c| matches!(c, DumpNode::Task(_))))
                || has_own_group_with_children(&s.children)
        }
        DumpNode::Task(_) => false,
    })
}

/// Reads the tree of `core` (see the module doc).
pub(crate) fn snapshot(core: &Core) -> Dump {
    let rows = core.task_rows();
    let by_root: HashMap<NodeKey, usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.root != NO_NODE)
        .map(|(i, r)| (r.root, i))
        .collect();
    // Tasks linked at a node without a root of their own (group children).
    let by_link: HashMap<TaskId, usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.root == NO_NODE && r.parent != NO_NODE)
        .map(|(i, r)| (r.id, i))
        .collect();
    let mut b = Builder {
        core,
        rows: &rows,
        by_root: &by_root,
        by_link: &by_link,
        seen: vec![false; rows.len()],
    };
    let mut roots = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let top = if r.root == NO_NODE {
            r.parent == NO_NODE
        } else {
            core.cancel()
                .view(r.root)
                .is_none_or(|v| v.parent == NO_NODE)
        };
        if top {
            roots.push(DumpNode::Task(b.task(i)));
        }
    }
    // Tasks not reached from a top-level one (only after misuse, e.g. a leaked scope):
    // shown at the top rather than lost.
    for i in 0..rows.len() {
        if !b.seen[i] {
            roots.push(DumpNode::Task(b.task(i)));
        }
    }
    roots.sort_by_key(|n| match n {
        DumpNode::Task(t) => t.id,
        DumpNode::Scope(_) => u64::MAX,
    });
    Dump {
        now: core.now(),
        paused_clock: core.clock_paused(),
        tasks: rows.len(),
        roots,
    }
}

struct Builder<'a> {
    core: &'a Core,
    rows: &'a [TaskRow],
    by_root: &'a HashMap<NodeKey, usize>,
    by_link: &'a HashMap<TaskId, usize>,
    seen: Vec<bool>,
}

impl Builder<'_> {
    fn task(&mut self, i: usize) -> TaskDump {
        self.seen[i] = true;
        let row = &self.rows[i];
        let state = if self.core.current_task() == Some(row.id) {
            TaskState::Running
        } else if row.scheduled {
            TaskState::Ready
        } else {
            TaskState::Waiting
        };
        let mut t = TaskDump {
            id: row.id.seq,
            name: row.name.clone(),
            spawned_at: row.spawned_at,
            state,
            cancelling: 0,
            waits: Vec::new(),
            children: Vec::new(),
        };
        let view = (row.root != NO_NODE)
            .then(|| self.core.cancel().view(row.root))
            .flatten();
        // The top-level wait, kept in the task: a cancel of the task has reached it
        // once the root is cancelled (the task is scheduled then).
        if let Some(on) = row.wait {
            let woken = match &view {
                Some(v) => v.effective,
                None => row.parent != NO_NODE && self.core.cancel().is_cancelled(row.parent),
            };
            t.waits.push(Wait::new(on, woken));
        }
        let Some(view) = view else {
            return t;
        };
        t.cancelling = view.cancelling;
        t.waits
            .extend(view.waits.iter().map(|&(on, fired)| Wait::new(on, fired)));
        let mut all_waits = std::mem::take(&mut t.waits);
        t.children = self.children(&view.children, &view.tasks, &mut all_waits);
        t.waits = all_waits;
        t
    }

    /// The nodes under a node, then the tasks linked at it; waits found in scopes of
    /// the same task are added to `task_waits`.
    fn children(
        &mut self,
        keys: &[NodeKey],
        linked: &[TaskId],
        task_waits: &mut Vec<Wait>,
    ) -> Vec<DumpNode> {
        let mut out = Vec::new();
        for &k in keys {
            if let Some(&i) = self.by_root.get(&k) {
                if !self.seen[i] {
                    out.push(DumpNode::Task(self.task(i)));
                }
                continue;
            }
            let Some(view) = self.core.cancel().view(k) else {
                continue;
            };
            let Some(scope) = &view.scope else {
                continue; // a root of no live task: nothing to show
            };
            let waits: Vec<Wait> = view
                .waits
                .iter()
                .map(|&(on, fired)| Wait::new(on, fired))
                .collect();
            task_waits.extend(waits.iter().cloned());
            let children = self.children(&view.children, &view.tasks, task_waits);
            out.push(DumpNode::Scope(ScopeDump {
                group: scope.is_group(),
                cancel_called: scope.cancel_called(),
                cancelled: view.effective,
                reason: scope.reason(),
                shield: scope.shield(),
                deadline: scope.deadline_at(),
                waits,
                children,
            }));
        }
        for t in linked {
            if let Some(&i) = self.by_link.get(t) {
                if !self.seen[i] {
                    out.push(DumpNode::Task(self.task(i)));
                }
            }
        }
        // Tasks with a root and linked ones in one order, the order they were spawned
        // (the scopes keep their places).
        let mut tasks = Vec::new();
        let places: Vec<Option<DumpNode>> = out
            .into_iter()
            .map(|n| match n {
                DumpNode::Task(t) => {
                    tasks.push(t);
                    None
                }
                scope => Some(scope),
            })
            .collect();
        tasks.sort_by_key(|t| t.id);
        let mut tasks = tasks.into_iter();
        places
            .into_iter()
            .map(|p| p.unwrap_or_else(|| DumpNode::Task(tasks.next().expect("one per place"))))
            .collect()
    }
}

// ---- from another thread ------------------------------------------------------------

/// Asks a runtime for a [`Dump`] from any thread: `Send`, `Sync` and `Clone`.
///
/// Get one with [`Runtime::dump_handle`](crate::Runtime::dump_handle). The runtime
/// takes the dump the next time its run loop turns (at once when it is idle, otherwise
/// within [`IO_POLL_INTERVAL`](crate::IO_POLL_INTERVAL) task polls), so a runtime
/// stuck in a task that never yields, or not inside `block_on`, does not answer: hence
/// the timeout.
///
/// ```
/// use scope_runtime::{Runtime, sleep};
/// use std::time::Duration;
///
/// let rt = Runtime::new()?;
/// let handle = rt.dump_handle();
/// let watcher = std::thread::spawn(move || handle.request(Duration::from_secs(10)));
/// rt.block_on(async {
///     // Real time passes here while the other thread asks.
///     while !watcher.is_finished() {
///         sleep(Duration::from_millis(5)).await.unwrap();
///     }
/// });
/// let dump = watcher.join().unwrap().expect("the runtime answered");
/// assert!(dump.to_string().contains("`main`"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct DumpHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for DumpHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DumpHandle").finish_non_exhaustive()
    }
}

/// Where the runtime puts the dump one request asked for.
#[derive(Default)]
pub(crate) struct DumpReply {
    state: Mutex<ReplyState>,
    ready: Condvar,
}

#[derive(Default)]
struct ReplyState {
    dump: Option<Dump>,
    /// The runtime shut down without answering.
    gone: bool,
}

impl DumpReply {
    /// Answers the request (on the runtime's thread).
    pub(crate) fn fulfil(&self, dump: Dump) {
        self.state.lock().dump = Some(dump);
        self.ready.notify_all();
    }

    /// The runtime is gone: the request gets `None` now instead of at its timeout.
    pub(crate) fn abandon(&self) {
        self.state.lock().gone = true;
        self.ready.notify_all();
    }
}

impl DumpHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> DumpHandle {
        DumpHandle { shared }
    }

    /// Asks the runtime for a dump and waits up to `timeout` for it. `None` when the
    /// runtime did not answer in time, or is gone.
    ///
    /// Called on the runtime's own thread it can only time out (the runtime cannot
    /// turn while this call blocks it): use [`dump`](crate::dump) there.
    pub fn request(&self, timeout: Duration) -> Option<Dump> {
        let reply = Arc::new(DumpReply::default());
        if !self.shared.push_dump_request(reply.clone()) {
            return None;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut st = reply.state.lock();
        loop {
            if let Some(d) = st.dump.take() {
                return Some(d);
            }
            if st.gone {
                return None;
            }
            match deadline {
                Some(at) => {
                    if reply.ready.wait_until(&mut st, at).timed_out() {
                        return st.dump.take();
                    }
                }
                None => reply.ready.wait(&mut st),
            }
        }
    }
}
