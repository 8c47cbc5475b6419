// The tests embed ../supabase/migrations: adding or removing a file rebuilds them.
fn main() {
    println!("cargo:rerun-if-changed=../supabase/migrations");
}
