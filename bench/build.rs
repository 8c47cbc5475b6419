//! The embedded sets of `cargo xtask bench boot`: N = 100, 1,000 and 10,000 generated
//! migrations written to `$OUT_DIR/boot-<N>/supabase/migrations`, which
//! `bench/src/boot.rs` embeds with `plover::embed_migrations!` as an app would.
//!
//! Only when PLOVER_BENCH_BOOT is set: otherwise the directories are left empty, so
//! that an ordinary build of the bench embeds nothing (11,100 files cost the
//! compiler time and the binary space). The bench says how to build them.

use std::path::Path;

/// The sizes embedded; `boot.rs` names the same.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PLOVER_BENCH_BOOT");
    let generate = std::env::var_os("PLOVER_BENCH_BOOT").is_some_and(|v| !v.is_empty());
    let out = std::env::var("OUT_DIR")?;
    for n in SIZES {
        let dir = Path::new(&out)
            .join(format!("boot-{n}"))
            .join("supabase/migrations");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        if !generate {
            continue;
        }
        for i in 1..=n {
            // 14 increasing digits in the Supabase CLI's style.
            let version = 20_250_101_000_000_u64 + i as u64;
            let sql = format!(
                "-- Table {i}.\n\
                 create table if not exists public.boot_t_{i} (\n    \
                     id bigint generated always as identity primary key,\n    \
                     name text not null,\n    \
                     created_at timestamptz not null default now()\n\
                 );\n\
                 create index if not exists boot_t_{i}_created_at_idx on public.boot_t_{i} (created_at);\n\
                 alter table public.boot_t_{i} enable row level security;\n\
                 comment on table public.boot_t_{i} is 'boot bench table {i}';\n"
            );
            std::fs::write(dir.join(format!("{version}_create_boot_t_{i}.sql")), sql)?;
        }
    }
    Ok(())
}
