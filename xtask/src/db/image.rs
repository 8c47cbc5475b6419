//! `cargo xtask db image`: the local PostgreSQL image for the project's `[db]
//! major_version` (or --major), found or built by [`crate::image`]; its name on stdout.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::flags::DbImage;
use crate::image::{self, Missing};

impl DbImage {
    pub fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let major = self.major.unwrap_or(ctx.project.config().db_major_version);
        let reference = image::ensure(&ctx.sh, major, self.mirror.as_deref(), Missing::Build)?;
        if let Some(reference) = reference {
            println!("{reference}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
