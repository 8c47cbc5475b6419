//! `cargo xtask db extensions`: which of the extensions Supabase projects use the
//! native PostgreSQL server has, and `--install` to add plover's stand-ins to it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use plover::supabase::extensions::{Origin, STAND_IN_FILES, STAND_IN_MARK, SUPABASE_EXTENSIONS};
use xshell::{Shell, cmd};

use super::{Ctx, EXIT_ATTENTION};
use crate::flags::DbExtensions;

impl DbExtensions {
    pub fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let bin = plover::testing::find_binaries()?;
        let dir = extension_dir(&ctx.sh, &bin)?;
        let major = major_of(&bin);
        if self.install {
            install(&dir)?;
        }
        let mut missing = 0;
        println!(
            "extensions of the native PostgreSQL server ({}):",
            bin.display()
        );
        for e in SUPABASE_EXTENSIONS
            .iter()
            .filter(|e| e.origin != Origin::Contrib)
        {
            let control = std::fs::read_to_string(dir.join(format!("{}.control", e.name)));
            let state = match (&control, e.origin) {
                (Ok(text), _) if text.contains(STAND_IN_MARK) => "plover stand-in".to_owned(),
                (Ok(_), _) => "installed".to_owned(),
                (Err(_), Origin::Package(package)) => {
                    missing += 1;
                    let or = if plover::supabase::extensions::has_stand_in(e.name) {
                        ", or the stand-in: sudo cargo xtask db extensions --install"
                    } else {
                        ""
                    };
                    format!("missing: package postgresql-{major}-{package} (Debian/Ubuntu){or}")
                }
                (Err(_), Origin::StandIn) => {
                    missing += 1;
                    "missing: sudo cargo xtask db extensions --install".to_owned()
                }
                (Err(_), _) => "missing: Supabase only, no stand-in".to_owned(),
            };
            println!("  {:<16} {state}", e.name);
        }
        println!(
            "plover's local image (`cargo xtask db reset-local --docker`) has the packaged ones and the stand-ins"
        );
        Ok(if missing == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_ATTENTION)
        })
    }
}

/// `$(pg_config --sharedir)/extension` of the server whose binaries are in `bin`.
fn extension_dir(sh: &Shell, bin: &Path) -> Result<PathBuf> {
    let pg_config = bin.join("pg_config");
    let share = cmd!(sh, "{pg_config} --sharedir")
        .quiet()
        .read()
        .with_context(|| format!("asking {} for the share directory", pg_config.display()))?;
    Ok(PathBuf::from(share.trim()).join("extension"))
}

/// The major version in a Debian-style `/usr/lib/postgresql/<major>/bin`.
fn major_of(bin: &Path) -> String {
    bin.parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .filter(|n| n.parse::<u32>().is_ok())
        .unwrap_or("<major>")
        .to_owned()
}

/// Writes the stand-ins into the native server's extension directory (what
/// `db extensions --install` does).
pub fn install_native(sh: &Shell) -> Result<()> {
    let bin = plover::testing::find_binaries()?;
    install(&extension_dir(sh, &bin)?)
}

/// Writes the stand-ins' files into `dir`, keeping a real build of the same
/// extension where one is installed.
fn install(dir: &Path) -> Result<()> {
    let real: Vec<&str> = STAND_IN_FILES
        .iter()
        .filter_map(|f| f.name.strip_suffix(".control"))
        .filter(|name| {
            std::fs::read_to_string(dir.join(format!("{name}.control")))
                .is_ok_and(|text| !text.contains(STAND_IN_MARK))
        })
        .collect();
    let mut written = 0;
    for file in STAND_IN_FILES {
        let extension = plover::supabase::extensions::extension_of(file.name);
        if real.contains(&extension) {
            continue;
        }
        let path = dir.join(file.name);
        if std::fs::read_to_string(&path).is_ok_and(|text| text == file.contents) {
            continue;
        }
        let partial = dir.join(format!(".{}.plover-partial", file.name));
        let written_ok =
            std::fs::write(&partial, file.contents).and_then(|()| std::fs::rename(&partial, &path));
        match written_ok {
            Ok(()) => written += 1,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => bail!(
                "cannot write the stand-ins into {} (permission denied): run it as root, e.g. `sudo cargo xtask db extensions --install`, or use plover's local image (`cargo xtask db reset-local --docker`)",
                dir.display()
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e).with_context(|| format!("writing {}", path.display()));
            }
        }
    }
    for name in &real {
        println!("kept the real {name} installed in {}", dir.display());
    }
    println!(
        "installed plover's stand-ins into {} ({written} file(s) written, the others were up to date)",
        dir.display()
    );
    Ok(())
}
