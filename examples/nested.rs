//! The nested example from the seed discussion: three task groups inside each other;
//! the innermost body cancels the *middle* group. Prints which lines are reached.
//!
//! Run: `cargo run --example nested`

use scope_runtime::{BoxError, TaskGroup, checkpoint, task_group};

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    task_group(|_outer| async move {
        let middle = TaskGroup::new();
        let m = middle.clone();
        middle
            .run(|_| async move {
                task_group(|_inner| async move {
                    m.cancel();
                    println!("We DO reach here: cancel() schedules the cancellation, it does not raise it");
                    checkpoint().await?;
                    println!("We do NOT reach here: the checkpoint fails with Cancelled");
                    Ok(())
                })
                .await?;
                println!("We do NOT reach here: the inner group lets the cancellation through");
                Ok(())
            })
            .await?;
        println!(
            "We DO reach here: the middle group absorbed its own cancellation \
             (cancel_called={}, cancelled_caught={})",
            middle.cancel_called(),
            middle.cancelled_caught()
        );
        checkpoint().await?;
        println!("We DO reach here: the outer group is unaffected");
        Ok(())
    })
    .await?;
    Ok(())
}
