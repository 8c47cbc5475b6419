//! The local Supabase-flavoured PostgreSQL image (`cargo xtask db image`), built
//! from Debian's packages without a container registry, and cached by content hash.
//!
//! Two stages, each cached by the hash of what it is made of:
//! - the root filesystem: `debootstrap` of the Debian release that ships the major
//!   (bookworm for 15, trixie for 17), then `apt-get install` of PostgreSQL and the
//!   extension packages in a chroot, the package's own cluster and caches removed, and
//!   `shared_preload_libraries` (pg_cron and friends) added to the sample
//!   configuration every `initdb` copies. Extensions the release lacks for the major
//!   (pgvector for 15 on bookworm) are built in the chroot from a later release's
//!   Debian source package, pinned by version and SHA-256 and fetched from the same
//!   mirror's pool, with PGXS; the build packages are then purged. Kept as a tarball
//!   in `/var/cache/plover` and imported as `plover-postgres-base:<major>-<rootfs hash>`;
//! - the image `plover-postgres:<major>-<hash>`: the base plus every `*.control` and
//!   `*.sql` file of `crates/plover/extensions/` (the stand-ins for Supabase-only
//!   extensions) in the server's extension directory. Its hash covers the rootfs
//!   hash and the stand-ins' names and bytes, so a stand-in change rebuilds only this
//!   stage (seconds), and an unchanged recipe reuses the image.
//!
//! The image has no entrypoint (`ContainerSpec::bare`): the container runs `initdb`,
//! then `postgres`, as `plover::testing::docker` has it.
//!
//! Must not: pull anything from a registry or fetch from anywhere but the Debian
//! mirror, or run debootstrap when the tarball of the same recipe is cached.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use plover::Checksum;
use xshell::{Shell, cmd};

/// Bumped whenever the build steps below change what an image contains.
const BUILDER_VERSION: u32 = 1;
/// Bumped whenever the steps of a source build ([`build_sources`]) change; only
/// recipes with source packages hash it, so the others keep their images.
const SOURCE_BUILDER_VERSION: u32 = 1;
/// The image's repository name; the tag is `<major>-<hash>`.
pub const REPOSITORY: &str = "plover-postgres";
/// The base image (the root filesystem alone); the tag is `<major>-<rootfs hash>`.
const BASE_REPOSITORY: &str = "plover-postgres-base";
/// Where the root filesystem tarballs (and the build lock and logs) live.
const CACHE_DIR: &str = "/var/cache/plover";
/// Where the stand-in extensions live, from the workspace root.
pub const STAND_INS: &str = "crates/plover/extensions";
/// Hex digits of a hash in a tag.
const HASH_LEN: usize = 12;
/// The mirror when this machine's apt configuration names none.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Libraries every server of the image loads at start: what `create extension` of
/// pg_cron and pgaudit needs, and what Supabase preloads of the rest.
const PRELOAD: &str = "pg_stat_statements,pgaudit,plpgsql_check,pg_cron";

/// What a major version's image is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    /// The PostgreSQL major version.
    pub major: u16,
    /// The Debian release that ships it.
    pub suite: &'static str,
    /// The packages installed (PostgreSQL, then its extensions).
    pub packages: Vec<String>,
    /// Extensions the release does not package for this major, built from a later
    /// release's Debian source packages in the root filesystem.
    pub sources: Vec<SourcePackage>,
}

/// A Debian source package of an extension, built with PGXS against the recipe's
/// PostgreSQL. Pinned (version and SHA-256 of each file, as the Sources index of
/// `suite` lists them) so the recipe's hash covers exactly what is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePackage {
    /// The source package (`pgvector`).
    pub name: &'static str,
    /// Its Debian version (`0.8.0-1`).
    pub version: &'static str,
    /// The release whose Sources index the pins were read from.
    pub suite: &'static str,
    /// The extension it installs (its `<name>.control`).
    pub extension: &'static str,
    /// The `.dsc`, the upstream and the Debian tarballs, each with its SHA-256.
    pub files: &'static [(&'static str, &'static str)],
    /// Packages the build needs besides the server headers and a compiler (purged after).
    pub build_depends: &'static [&'static str],
    /// Packages the extension needs at run time (kept).
    pub depends: &'static [&'static str],
}

impl Recipe {
    /// Whether the recipe installs the real extension a stand-in file
    /// (`<name>.control`, `<name>--<version>.sql`) stands in for: then the stand-in
    /// stays out of the image (plover has one for `http`, which Debian packages for 17
    /// and not for 15).
    fn packages_extension_of(&self, file: &str) -> bool {
        let name = plover::supabase::extensions::extension_of(file);
        let packaged = match plover::supabase::extensions::find(name).map(|e| e.origin) {
            Some(plover::supabase::extensions::Origin::Package(package)) => self
                .packages
                .contains(&format!("postgresql-{}-{package}", self.major)),
            _ => false,
        };
        packaged || self.sources.iter().any(|s| s.extension == name)
    }
}

impl SourcePackage {
    /// The package's directory in the archive's pool (`pool/main/p/pgvector`).
    fn pool_dir(&self) -> String {
        let prefix = match self.name.strip_prefix("lib") {
            Some(rest) if !rest.is_empty() => &self.name[..4],
            _ => &self.name[..1],
        };
        format!("pool/main/{prefix}/{}", self.name)
    }
}

/// pgvector from Debian 13 (trixie), for PostgreSQL 15 on Debian 12, which has none.
/// Debian's patch drops upstream's `-march=native`, so the build runs on any x86-64.
const PGVECTOR: SourcePackage = SourcePackage {
    name: "pgvector",
    version: "0.8.0-1",
    suite: "trixie",
    extension: "vector",
    files: &[
        (
            "pgvector_0.8.0-1.dsc",
            "a71780bf7ab9901094a3d9869c489b6e2bcb858a8c14a5fa52d159933e016308",
        ),
        (
            "pgvector_0.8.0.orig.tar.gz",
            "867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0",
        ),
        (
            "pgvector_0.8.0-1.debian.tar.xz",
            "6cb10bfdee32a093f0711a53d61f63657514d60058ff76a44ae2a4434f9c7ee5",
        ),
    ],
    build_depends: &[],
    depends: &[],
};

impl Recipe {
    /// The recipe for `major`: 15 (Debian 12, bookworm) or 17 (Debian 13, trixie).
    pub fn for_major(major: u16) -> Result<Recipe> {
        // The Supabase extensions each Debian release packages for that major (no
        // pgvector or http in bookworm); postgis and timescaledb are left out (large,
        // or needing a preload Supabase 17 no longer has).
        let (suite, extensions): (_, &[&str]) = match major {
            15 => (
                "bookworm",
                &[
                    "cron",
                    "hypopg",
                    "partman",
                    "pgaudit",
                    "pgtap",
                    "plpgsql-check",
                    "repack",
                    "rum",
                    "wal2json",
                ],
            ),
            17 => (
                "trixie",
                &[
                    "cron",
                    "http",
                    "hypopg",
                    "partman",
                    "pgaudit",
                    "pgtap",
                    "pgvector",
                    "plpgsql-check",
                    "repack",
                    "rum",
                    "wal2json",
                ],
            ),
            other => bail!(
                "the local image has PostgreSQL 15 or 17, not {other}: set `[db] major_version` in supabase/config.toml to 15 or 17 (or pass --major)"
            ),
        };
        let mut packages = vec![format!("postgresql-{major}")];
        packages.extend(extensions.iter().map(|e| format!("postgresql-{major}-{e}")));
        let sources = match major {
            // pgsql-http (trixie's 1.6.3-1) would build the same way (build_depends
            // libcurl4-openssl-dev, depends libcurl4), but the mirror this project is
            // built from answers 404 for its files in pool/main/p/pgsql-http.
            15 => vec![PGVECTOR],
            _ => Vec::new(),
        };
        Ok(Recipe {
            major,
            suite,
            packages,
            sources,
        })
    }

    /// The lines appended to the sample configuration `initdb` copies.
    fn configuration(&self) -> String {
        format!(
            "\n# Added by plover's image builder (cargo xtask db image).\n\
             shared_preload_libraries = '{PRELOAD}'\n\
             cron.database_name = 'postgres'\n"
        )
    }

    /// The hash of everything the root filesystem is made of. A recipe without source
    /// builds hashes as it did before they existed (the 17 image keeps its tag).
    pub fn rootfs_hash(&self) -> String {
        let mut text = format!(
            "plover image builder {BUILDER_VERSION}\nsuite {}\nmajor {}\npackages {}\nconfiguration {}",
            self.suite,
            self.major,
            self.packages.join(" "),
            self.configuration()
        );
        if !self.sources.is_empty() {
            text.push_str(&format!("\nsource builder {SOURCE_BUILDER_VERSION}"));
        }
        for source in &self.sources {
            text.push_str(&format!(
                "\nsource {} {} from {} builds {} with {} needs {}",
                source.name,
                source.version,
                source.suite,
                source.extension,
                source.build_depends.join(" "),
                source.depends.join(" ")
            ));
            for (file, sha256) in source.files {
                text.push_str(&format!("\n  {file} {sha256}"));
            }
        }
        Checksum::of(text.as_bytes()).to_hex()[..HASH_LEN].to_owned()
    }

    /// The hash of the image: the root filesystem's and the stand-ins' names and bytes.
    pub fn image_hash(&self, stand_ins: &[StandIn]) -> String {
        let mut bytes = format!("rootfs {}\n", self.rootfs_hash()).into_bytes();
        for file in stand_ins {
            // Lengths keep the concatenation unambiguous.
            bytes.extend(
                format!("{} {} {}\n", file.name.len(), file.name, file.bytes.len()).bytes(),
            );
            bytes.extend(&file.bytes);
        }
        Checksum::of(&bytes).to_hex()[..HASH_LEN].to_owned()
    }

    /// `plover-postgres:<major>-<image hash>`.
    pub fn reference(&self, stand_ins: &[StandIn]) -> String {
        format!("{REPOSITORY}:{}", self.tag(stand_ins))
    }

    /// `<major>-<image hash>`.
    pub fn tag(&self, stand_ins: &[StandIn]) -> String {
        format!("{}-{}", self.major, self.image_hash(stand_ins))
    }

    fn base_reference(&self) -> String {
        format!("{BASE_REPOSITORY}:{}-{}", self.major, self.rootfs_hash())
    }

    fn rootfs_tarball(&self) -> PathBuf {
        Path::new(CACHE_DIR).join(format!(
            "rootfs-{}-postgresql-{}-{}.tar",
            self.suite,
            self.major,
            self.rootfs_hash()
        ))
    }

    /// The server's extension directory in the image.
    fn extension_dir(&self) -> String {
        format!("/usr/share/postgresql/{}/extension", self.major)
    }
}

/// A stand-in extension file: its name and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandIn {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The `*.control` and `*.sql` files of `dir`, sorted by name; none when the
/// directory is absent.
pub fn stand_ins(dir: &Path) -> Result<Vec<StandIn>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.ends_with(".control") || name.ends_with(".sql")) || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push(StandIn {
            name: name.to_owned(),
            bytes,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// What to do when the image is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Build it (an error when this machine cannot).
    Build,
    /// Build it when this machine can (root, debootstrap); else `Ok(None)`.
    BuildIfPossible,
}

/// The local image for `major` with the stand-ins of the workspace at the shell's
/// directory: present already, or built now. Progress goes to stderr. `None` only
/// with [`Missing::BuildIfPossible`] on a machine that cannot build it (the reason is
/// printed).
pub fn ensure(
    sh: &Shell,
    major: u16,
    mirror: Option<&str>,
    missing: Missing,
) -> Result<Option<String>> {
    let recipe = Recipe::for_major(major)?;
    let stand_ins = stand_ins(&sh.current_dir().join(STAND_INS))?;
    let reference = recipe.reference(&stand_ins);
    ensure!(
        engine_answers(sh),
        "no Docker engine answers, so the local image {reference} cannot be found or built: start one (as root: `.ci/docker-up`)"
    );
    if image_exists(sh, &reference) {
        return Ok(Some(reference));
    }
    if let Err(why) = can_build() {
        let how = format!(
            "the local image {reference} is missing and {why}; build it once with `sudo cargo xtask db image --major {major}`"
        );
        return match missing {
            Missing::Build => bail!("{how}"),
            Missing::BuildIfPossible => {
                eprintln!("note: {how}");
                Ok(None)
            }
        };
    }
    std::fs::create_dir_all(CACHE_DIR).with_context(|| format!("creating {CACHE_DIR}"))?;
    // One build at a time on this machine (other checkouts share the cache and engine).
    let lock_path = Path::new(CACHE_DIR).join("image.lock");
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!(
            "waiting for another image build (it holds {})",
            lock_path.display()
        );
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
    }
    if image_exists(sh, &reference) {
        eprintln!("local image {reference} is present (built meanwhile)");
        return Ok(Some(reference));
    }
    build(sh, &recipe, &stand_ins, &reference, mirror)?;
    drop(lock);
    Ok(Some(reference))
}

/// Why this machine cannot build the image, if it cannot.
fn can_build() -> Result<(), String> {
    if !is_root() {
        return Err("building it needs root (debootstrap and chroot)".into());
    }
    if which("debootstrap").is_none() {
        return Err(
            "building it needs debootstrap (`apt-get install -y debootstrap`; `.ci/docker-up` installs it)"
                .into(),
        );
    }
    Ok(())
}

fn build(
    sh: &Shell,
    recipe: &Recipe,
    stand_ins: &[StandIn],
    reference: &str,
    mirror: Option<&str>,
) -> Result<()> {
    let began = Instant::now();
    let base = recipe.base_reference();
    if image_exists(sh, &base) {
        eprintln!("base image {base} is present");
    } else {
        let tarball = recipe.rootfs_tarball();
        if tarball.is_file() {
            eprintln!("root filesystem from the cache: {}", tarball.display());
        } else {
            rootfs(recipe, &tarball, mirror)?;
        }
        let step = Instant::now();
        let env = format!(
            "ENV PATH=/usr/lib/postgresql/{}/bin:/usr/local/bin:/usr/bin:/bin",
            recipe.major
        );
        cmd!(
            sh,
            "docker import -c 'USER postgres' -c {env} {tarball} {base}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("importing {} as {base}", tarball.display()))?;
        eprintln!("imported {base} in {}", seconds(step));
    }

    let step = Instant::now();
    if stand_ins.is_empty() {
        cmd!(sh, "docker tag {base} {reference}")
            .quiet()
            .run()
            .with_context(|| format!("tagging {base} as {reference}"))?;
        eprintln!("no stand-in extensions in {STAND_INS}: {reference} is the base image");
    } else {
        add_stand_ins(sh, recipe, stand_ins, &base, reference)?;
        eprintln!(
            "added {} stand-in extension file(s) from {STAND_INS} in {}",
            stand_ins.len(),
            seconds(step)
        );
    }
    eprintln!("built {reference} in {}", seconds(began));
    Ok(())
}

/// debootstrap, the packages in a chroot, the clean-up and the configuration; then
/// the tarball, written whole or not at all.
fn rootfs(recipe: &Recipe, tarball: &Path, mirror: Option<&str>) -> Result<()> {
    let mirror = mirror.map(str::to_owned).unwrap_or_else(apt_mirror);
    let log_path = Path::new(CACHE_DIR).join(format!("build-{}.log", recipe.major));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    eprintln!(
        "building the root filesystem: Debian {} with PostgreSQL {} and {} extension packages from {mirror}; \
         the first build takes a few minutes (log: {})",
        recipe.suite,
        recipe.major,
        recipe.packages.len() - 1,
        log_path.display()
    );
    let dir = tempdir(&format!("plover-rootfs-{}", recipe.major))?;
    let result = (|| {
        let root = dir.path();
        let step = Instant::now();
        run_logged(
            Command::new("debootstrap")
                .args(["--variant=minbase", recipe.suite])
                .arg(root)
                .arg(&mirror),
            &log,
            &log_path,
            "debootstrap",
        )?;
        eprintln!("  debootstrap {}: {}", recipe.suite, seconds(step));

        // No service may start in the chroot, and the package's own cluster is not
        // wanted (containers run initdb themselves).
        write(root, "usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)?;
        write(
            root,
            "etc/postgresql-common/createcluster.d/plover.conf",
            "create_main_cluster = false\n",
            0o644,
        )?;
        let step = Instant::now();
        run_logged(
            Command::new("chroot").arg(root).args(["apt-get", "update"]),
            &log,
            &log_path,
            "apt-get update in the chroot",
        )?;
        run_logged(
            Command::new("chroot")
                .arg(root)
                .args(["apt-get", "install", "-y", "--no-install-recommends"])
                .args(&recipe.packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            &log,
            &log_path,
            "apt-get install in the chroot",
        )?;
        eprintln!(
            "  packages ({}): {}",
            recipe.packages.join(" "),
            seconds(step)
        );

        let postgres = root.join(format!("usr/lib/postgresql/{}/bin/postgres", recipe.major));
        ensure!(
            postgres.is_file(),
            "the root filesystem has no {} after the install; see {}",
            postgres.display(),
            log_path.display()
        );
        let sample = root.join(format!(
            "usr/share/postgresql/{}/postgresql.conf.sample",
            recipe.major
        ));
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(&sample)
            .with_context(|| format!("opening {}", sample.display()))?;
        conf.write_all(recipe.configuration().as_bytes())
            .with_context(|| format!("writing {}", sample.display()))?;

        if !recipe.sources.is_empty() {
            let step = Instant::now();
            build_sources(recipe, root, &mirror, &log, &log_path)?;
            let names: Vec<&str> = recipe.sources.iter().map(|s| s.name).collect();
            eprintln!(
                "  built from source ({}): {}",
                names.join(" "),
                seconds(step)
            );
        }

        for leftover in [
            "usr/sbin/policy-rc.d".to_owned(),
            format!("var/lib/postgresql/{}", recipe.major),
            format!("etc/postgresql/{}", recipe.major),
            "usr/share/doc".into(),
            "usr/share/man".into(),
            "usr/share/info".into(),
            "var/cache/apt".into(),
            "var/lib/apt/lists".into(),
        ] {
            let path = root.join(&leftover);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
        }
        std::fs::create_dir_all(root.join("var/lib/apt/lists/partial"))
            .context("recreating apt's list directory")?;

        let step = Instant::now();
        let partial = tarball.with_extension("tar.partial");
        run_logged(
            Command::new("tar")
                .args(["--numeric-owner", "-C"])
                .arg(root)
                .arg("-cf")
                .arg(&partial)
                .arg("."),
            &log,
            &log_path,
            "tar of the root filesystem",
        )?;
        std::fs::rename(&partial, tarball)
            .with_context(|| format!("moving the tarball to {}", tarball.display()))?;
        eprintln!("  tarball {}: {}", tarball.display(), seconds(step));
        Ok(())
    })();
    dir.remove()?;
    result
}

/// Where the source packages are unpacked and built, inside the root filesystem.
const SOURCE_DIR: &str = "usr/src/plover";

/// Builds the recipe's source packages in the chroot at `root`: their files fetched
/// from the archive's pool on `mirror` and checked against the pinned SHA-256,
/// unpacked with `dpkg-source` (Debian's patches applied), `make` and `make install`
/// with PGXS against the recipe's `pg_config`; then the build packages purged and the
/// sources removed, so only the installed extension stays.
fn build_sources(
    recipe: &Recipe,
    root: &Path,
    mirror: &str,
    log: &File,
    log_path: &Path,
) -> Result<()> {
    let major = recipe.major;
    let build_packages: Vec<String> = [
        format!("postgresql-server-dev-{major}"),
        "build-essential".into(),
    ]
    .into_iter()
    .chain(
        recipe
            .sources
            .iter()
            .flat_map(|s| s.build_depends.iter().map(|p| (*p).to_owned())),
    )
    .collect();
    let runtime: Vec<&str> = recipe
        .sources
        .iter()
        .flat_map(|s| s.depends)
        .copied()
        .collect();
    if !runtime.is_empty() {
        run_logged(
            Command::new("chroot")
                .arg(root)
                .args(["apt-get", "install", "-y", "--no-install-recommends"])
                .args(&runtime)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            log,
            log_path,
            "apt-get install of the extensions' run-time packages in the chroot",
        )?;
    }
    // What the build installs is purged after it, exactly (apt's autoremove keeps
    // what an installed package merely suggests: the compilers would stay).
    let before = installed(root)?;
    run_logged(
        Command::new("chroot")
            .arg(root)
            .args(["apt-get", "install", "-y", "--no-install-recommends"])
            .args(&build_packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        log,
        log_path,
        "apt-get install of the build packages in the chroot",
    )?;
    let added: Vec<String> = installed(root)?.difference(&before).cloned().collect();

    let pg_config = format!("PG_CONFIG=/usr/lib/postgresql/{major}/bin/pg_config");
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for source in &recipe.sources {
        let dir = format!("{SOURCE_DIR}/{}", source.name);
        let host_dir = root.join(&dir);
        std::fs::create_dir_all(&host_dir)
            .with_context(|| format!("creating {}", host_dir.display()))?;
        for (file, sha256) in source.files {
            let url = format!(
                "{}/{}/{file}",
                mirror.trim_end_matches('/'),
                source.pool_dir()
            );
            let path = host_dir.join(file);
            // wget is what debootstrap itself fetches with, so it is here.
            run_logged(
                Command::new("wget")
                    .args(["-nv", "-O"])
                    .arg(&path)
                    .arg(&url),
                log,
                log_path,
                &format!(
                    "fetching {url} (the source of {} {} from Debian {}; if the archive no longer has it, pin the version its Sources index lists in xtask/src/image.rs)",
                    source.name, source.version, source.suite
                ),
            )?;
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let actual = Checksum::of(&bytes).to_hex();
            ensure!(
                actual == *sha256,
                "{url} has SHA-256 {actual}, not the {sha256} Debian {}'s Sources index lists: a damaged download or a wrong pin in xtask/src/image.rs; run the build again, or fix the pin",
                source.suite
            );
        }
        let Some((dsc, _)) = source.files.iter().find(|(f, _)| f.ends_with(".dsc")) else {
            bail!(
                "the source package {} in xtask/src/image.rs lists no .dsc file: add it",
                source.name
            );
        };
        let what = format!("{} {}", source.name, source.version);
        run_logged(
            Command::new("chroot").arg(root).args([
                "dpkg-source",
                "-x",
                &format!("/{dir}/{dsc}"),
                &format!("/{dir}/build"),
            ]),
            log,
            log_path,
            &format!("unpacking {what} in the chroot"),
        )?;
        let build = format!("/{dir}/build");
        for target in [None, Some("install")] {
            run_logged(
                Command::new("chroot")
                    .arg(root)
                    .args(["make", "-C", &build, &jobs, "USE_PGXS=1", &pg_config])
                    .args(target),
                log,
                log_path,
                &format!("make {} of {what} in the chroot", target.unwrap_or("all")),
            )?;
        }
        let control = root.join(format!(
            "{}/{}.control",
            recipe.extension_dir().trim_start_matches('/'),
            source.extension
        ));
        ensure!(
            control.is_file(),
            "{what} installed no {}; see {}",
            control.display(),
            log_path.display()
        );
    }

    let sources = root.join(SOURCE_DIR);
    std::fs::remove_dir_all(&sources).with_context(|| format!("removing {}", sources.display()))?;
    run_logged(
        Command::new("chroot")
            .arg(root)
            .args(["apt-get", "purge", "-y"])
            .args(&added)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        log,
        log_path,
        "apt-get purge of the build packages in the chroot",
    )?;
    let left: Vec<String> = installed(root)?.difference(&before).cloned().collect();
    ensure!(
        left.is_empty(),
        "the build packages {} are still installed after the purge; see {}",
        left.join(" "),
        log_path.display()
    );
    Ok(())
}

/// The packages installed in the chroot at `root` (`name:arch` for multi-arch ones).
fn installed(root: &Path) -> Result<BTreeSet<String>> {
    let output = Command::new("chroot")
        .arg(root)
        .args([
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Abbrev} ${binary:Package}\\n",
        ])
        .stdin(Stdio::null())
        .output()
        .context("running dpkg-query in the chroot")?;
    ensure!(
        output.status.success(),
        "dpkg-query in the chroot failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    // `ii` is installed; a package removed but not purged (`rc`) is not.
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("ii "))
        .map(|name| name.trim().to_owned())
        .collect())
}

/// The base image plus the stand-ins, committed as `reference`.
fn add_stand_ins(
    sh: &Shell,
    recipe: &Recipe,
    stand_ins: &[StandIn],
    base: &str,
    reference: &str,
) -> Result<()> {
    let staging = tempdir("plover-stand-ins")?;
    for file in stand_ins
        .iter()
        .filter(|f| !recipe.packages_extension_of(&f.name))
    {
        write(staging.path(), &file.name, &file.bytes, 0o644)?;
    }
    let source = format!("{}/.", staging.path().display());
    let result = (|| {
        // A container that never runs: the files are copied into its filesystem and
        // the result committed.
        let id = cmd!(sh, "docker create --network none {base} true")
            .quiet()
            .read()
            .with_context(|| format!("creating a container of {base}"))?;
        let id = id.trim().to_owned();
        let target = format!("{id}:{}", recipe.extension_dir());
        let committed = cmd!(sh, "docker cp {source} {target}")
            .quiet()
            .run()
            .with_context(|| format!("copying the stand-ins into {target}"))
            .and_then(|()| {
                cmd!(sh, "docker commit {id} {reference}")
                    .quiet()
                    .ignore_stdout()
                    .run()
                    .with_context(|| format!("committing {reference}"))
            });
        let removed = cmd!(sh, "docker rm {id}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("removing the build container {id}"));
        committed.and(removed)
    })();
    staging.remove()?;
    result
}

/// Runs `command` with its output appended to the build log; a failure shows the
/// log's last lines.
fn run_logged(command: &mut Command, log: &File, log_path: &Path, what: &str) -> Result<()> {
    let status = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("opening the build log")?)
        .stderr(log.try_clone().context("opening the build log")?)
        .status()
        .with_context(|| format!("running {what}"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!(
        "{what} failed ({status}); the end of {}:\n{}",
        log_path.display(),
        tail.join("\n")
    )
}

/// The Debian mirror apt uses on this machine (the first `URIs:` of a deb822
/// `.sources` file or `deb` line of a `.list` file that is not a security mirror),
/// else deb.debian.org.
fn apt_mirror() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.insert(0, PathBuf::from("/etc/apt/sources.list"));
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some(url) = mirror_in(&text) {
            return url;
        }
    }
    DEFAULT_MIRROR.to_owned()
}

/// The first mirror a sources file names, leaving out security mirrors.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(uris) = line.strip_prefix("URIs:") {
                return uris.split_whitespace().next();
            }
            let mut words = line.split_whitespace();
            (words.next() == Some("deb"))
                .then(|| words.find(|w| w.contains("://")))
                .flatten()
        })
        .find(|url| !url.contains("security"))
        .map(str::to_owned)
}

/// Whether a Docker engine answers `docker info`.
pub fn engine_answers(sh: &Shell) -> bool {
    cmd!(sh, "docker info")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn image_exists(sh: &Shell, reference: &str) -> bool {
    cmd!(sh, "docker image inspect {reference}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Writes `bytes` to `root/relative` with `mode`, creating its directory.
fn write(root: &Path, relative: &str, bytes: impl AsRef<[u8]>, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// A directory under the system's temporary directory, removed by [`TempDir::remove`]
/// (or, failing that, when dropped).
struct TempDir(Option<PathBuf>);

fn tempdir(prefix: &str) -> Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(TempDir(Some(dir)))
}

impl TempDir {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new("/nonexistent"))
    }

    fn remove(mut self) -> Result<()> {
        match self.0.take() {
            Some(dir) => {
                std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
            }
            None => Ok(()),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn seconds(since: Instant) -> String {
    format!("{:.1} s", since.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> StandIn {
        StandIn {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_stand_in_stays_out_of_an_image_that_has_the_real_extension() -> Result<()> {
        let r17 = Recipe::for_major(17)?;
        let r15 = Recipe::for_major(15)?;
        assert!(r17.packages_extension_of("http.control"));
        assert!(r17.packages_extension_of("http--1.6.sql"));
        assert!(!r15.packages_extension_of("http.control"));
        assert!(r15.packages_extension_of("vector.control"));
        assert!(!r17.packages_extension_of("pg_net.control"));
        Ok(())
    }

    #[test]
    fn the_tag_changes_with_a_stand_in_and_only_then() {
        let recipe = Recipe::for_major(17).unwrap();
        let files = vec![
            file("pg_net--0.1.sql", "create schema net;\n"),
            file("pg_net.control", "default_version = '0.1'\n"),
        ];
        let tag = recipe.tag(&files);
        assert!(tag.starts_with("17-"), "{tag}");
        assert_eq!(tag.len(), 3 + HASH_LEN);
        assert_eq!(
            recipe.tag(&files.clone()),
            tag,
            "an unchanged recipe reuses the image"
        );

        let mut edited = files.clone();
        edited[0].bytes.push(b' ');
        assert_ne!(recipe.tag(&edited), tag, "a stand-in's bytes");
        let mut renamed = files.clone();
        renamed[0].name = "pg_net--0.2.sql".into();
        assert_ne!(recipe.tag(&renamed), tag, "a stand-in's name");
        assert_ne!(recipe.tag(&files[..1]), tag, "a stand-in removed");
        assert_ne!(recipe.tag(&[]), tag);
        // Bytes moved from one file to the next are another recipe.
        let moved = vec![
            file("pg_net--0.1.sql", "create schema net;\ndefault_version"),
            file("pg_net.control", " = '0.1'\n"),
        ];
        assert_ne!(recipe.tag(&moved), tag);
    }

    #[test]
    fn the_root_filesystem_hash_ignores_the_stand_ins_and_follows_the_packages() {
        let recipe = Recipe::for_major(17).unwrap();
        let rootfs = recipe.rootfs_hash();
        assert_eq!(
            recipe.base_reference(),
            format!("plover-postgres-base:17-{rootfs}")
        );
        let mut more = recipe.clone();
        more.packages.push("postgresql-17-postgis-3".into());
        assert_ne!(more.rootfs_hash(), rootfs);
        let fifteen = Recipe::for_major(15).unwrap();
        assert_ne!(fifteen.rootfs_hash(), rootfs);
        assert_eq!(fifteen.suite, "bookworm");
        assert!(fifteen.packages.contains(&"postgresql-15-cron".to_owned()));
        assert!(
            recipe
                .packages
                .contains(&"postgresql-17-pgvector".to_owned())
        );
        let e = Recipe::for_major(16).unwrap_err().to_string();
        assert!(e.contains("15 or 17") && e.contains("major_version"), "{e}");
    }

    #[test]
    fn the_15_recipe_builds_pgvector_from_source_and_the_17_recipe_keeps_its_hash() {
        let seventeen = Recipe::for_major(17).unwrap();
        assert!(seventeen.sources.is_empty());
        // The 17 image CI has cached: change this only with the 17 recipe itself.
        assert_eq!(seventeen.rootfs_hash(), "f6e0e50e6ca8");

        let fifteen = Recipe::for_major(15).unwrap();
        let names: Vec<&str> = fifteen.sources.iter().map(|s| s.name).collect();
        assert_eq!(names, ["pgvector"]);
        assert!(
            !fifteen
                .packages
                .iter()
                .any(|p| p.contains("pgvector") || p.contains("-http")),
            "Debian 12 packages neither: {:?}",
            fifteen.packages
        );
        let hash = fifteen.rootfs_hash();
        let mut without = fifteen.clone();
        without.sources.clear();
        assert_ne!(
            without.rootfs_hash(),
            hash,
            "the source build is in the hash"
        );
        let mut other_version = fifteen.clone();
        other_version.sources[0].version = "0.8.1-1";
        assert_ne!(other_version.rootfs_hash(), hash, "the pinned version");
        let mut other_file = fifteen.clone();
        other_file.sources[0].files = &[("pgvector_0.8.0-1.dsc", "00")];
        assert_ne!(other_file.rootfs_hash(), hash, "the pinned files");
        assert!(
            fifteen.sources[0]
                .files
                .iter()
                .any(|(f, _)| f.ends_with(".dsc"))
        );

        assert_eq!(PGVECTOR.pool_dir(), "pool/main/p/pgvector");
        let lib = SourcePackage {
            name: "libpqxx",
            ..PGVECTOR
        };
        assert_eq!(lib.pool_dir(), "pool/main/libp/libpqxx");
    }

    #[test]
    fn stand_ins_are_the_control_and_sql_files_sorted_and_none_without_the_directory() {
        let dir =
            std::env::temp_dir().join(format!("plover-stand-ins-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(stand_ins(&dir).unwrap(), []);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.control"), "x").unwrap();
        std::fs::write(dir.join("a--1.0.sql"), "y").unwrap();
        std::fs::write(dir.join("README.md"), "z").unwrap();
        let names: Vec<String> = stand_ins(&dir)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a--1.0.sql", "b.control"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_mirror_is_read_from_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n\
                      Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let list = "# comment\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(list).as_deref(),
            Some("http://ftp.example/debian")
        );
        assert_eq!(mirror_in("deb-src http://x/debian bookworm main\n"), None);
    }
}
