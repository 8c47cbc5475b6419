//! The embedded sets of `cargo xtask bench boot` and `bench peers`: N = 100, 1,000
//! and 10,000 migrations of the benches' workload (`src/workload.rs`, the files the
//! peers bench hands every tool) written to `$OUT_DIR/boot-<N>/supabase/migrations`,
//! which `bench/src/boot.rs` embeds with `plover::embed_migrations!` as an app would.
//!
//! Only when PLOVER_BENCH_BOOT is set: otherwise the directories are left empty, so
//! that an ordinary build of the bench embeds nothing (11,100 files cost the
//! compiler time and the binary space). The bench says how to build them.

use std::path::Path;

#[path = "src/workload.rs"]
mod workload;

/// The sizes embedded; `boot.rs` names the same.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/workload.rs");
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
        for (name, sql) in workload::files(n).0 {
            std::fs::write(dir.join(name), sql)?;
        }
    }
    Ok(())
}
