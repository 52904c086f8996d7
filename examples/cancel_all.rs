//! The program from the seed discussion: two jobs and a daemon in one task group;
//! each job, after each second of work, may decide (at random) that everything should
//! stop, and does so with one call: `tg.cancel()`.
//!
//! Run: `cargo run --example cancel_all` (add a number to pick the random seed).

use std::time::Duration;

use scope_runtime::{BoxError, TaskGroup, sleep};

/// A tiny deterministic random source (xorshift), so the demo needs no dependency.
struct Rng(u64);

impl Rng {
    fn chance(&mut self, percent: u64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100 < percent
    }
}

async fn job(i: u32, tg: TaskGroup, mut rng: Rng) -> Result<(), BoxError> {
    loop {
        if let Err(c) = sleep(Duration::from_millis(100)).await {
            println!("job {i}: cancelled while working ({})", c.reason());
            return Err(c.into());
        }
        println!("job {i}: did one unit of work");
        if rng.chance(10) {
            println!("job {i}: done, cancelling the whole group");
            tg.cancel_with(format!("job {i} finished"));
            return Ok(());
        }
    }
}

async fn daemon() -> Result<(), BoxError> {
    loop {
        if let Err(c) = sleep(Duration::from_millis(100)).await {
            println!("daemon: cancelled ({})", c.reason());
            return Err(c.into());
        }
        println!("daemon: tick");
    }
}

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2545_f491_4f6c_dd1d_u64);
    let group = TaskGroup::new();
    group
        .run(|tg| async move {
            tg.spawn_named("job 1", job(1, tg.clone(), Rng(seed)));
            tg.spawn_named("job 2", job(2, tg.clone(), Rng(seed.rotate_left(17) | 1)));
            tg.spawn_named("daemon", daemon());
            Ok(())
        })
        .await?;
    println!(
        "group finished: cancel_called={}, cancelled_caught={}, reason: {}",
        group.cancel_called(),
        group.cancelled_caught(),
        group
            .cancel_scope()
            .cancel_reason()
            .map_or("none".to_string(), |r| r.to_string())
    );
    Ok(())
}
