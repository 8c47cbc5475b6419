//! plover: Postgres and Supabase schema migrations.

pub mod split;
