#[scope_runtime::main]
async fn main<T: Default>() {
    let _ = T::default();
}

#[scope_runtime::main]
async fn with_where_clause()
where
    u8: Copy,
{
}
