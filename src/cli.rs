//! Command-line helpers shared by the examples.

use std::path::Path;
use std::process::ExitCode;

use shufflenas_model::{ArchError, Architecture, SearchSpace};

/// Errors of command-line arguments.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad genome or preset.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// A genome file that cannot be read or parsed.
    #[error("cannot read architecture file {path}: {reason}")]
    ArchFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Anything else, with a message.
    #[error("{0}")]
    Invalid(String),
}

/// The exit of an example: success, or the error message on stderr and a failure code.
pub fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves an `--arch` argument: a preset name (`oneshot-s+`, `oneshot`,
/// `supernet-max`), `BLOCKS;CHANNELS` (two comma lists), or a JSON genome file
/// (`{"blocks": [...], "channels": [...]}`).
///
/// # Errors
/// [`CliError`] naming the problem: unknown preset, bad gene, unreadable file.
pub fn resolve_architecture(spec: &str) -> Result<Architecture, CliError> {
    let spec = spec.trim();
    if spec.contains(';') {
        return Ok(spec.parse()?);
    }
    let path = Path::new(spec);
    let looks_like_genes = spec.contains(',') && spec.chars().all(|c| c.is_ascii_digit() || ", []-".contains(c));
    if looks_like_genes && !path.exists() {
        // A gene list without its ';': the parser names what is missing.
        return Ok(spec.parse()?);
    }
    if spec.ends_with(".json") || path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::ArchFile { path: spec.to_string(), reason: e.to_string() })?;
        let arch: Architecture = serde_json::from_str(&text)
            .map_err(|e| CliError::ArchFile { path: spec.to_string(), reason: e.to_string() })?;
        return Ok(arch);
    }
    Ok(Architecture::preset(spec)?)
}

/// Resolves `--arch` and checks it against `space`.
///
/// # Errors
/// As [`resolve_architecture`], plus gene-count and range errors from the space.
pub fn architecture_for(space: &SearchSpace, spec: &str) -> Result<Architecture, CliError> {
    let arch = resolve_architecture(spec)?;
    space.validate(&arch)?;
    Ok(arch)
}

/// A short stable name for a genome (16 hex digits of a digest of its text), for the
/// folders of per-genome runs.
pub fn genome_digest(arch: &Architecture) -> String {
    use shufflenas_search::evaluator::{FNV_OFFSET, fnv1a};
    format!("{:016x}", fnv1a(arch.to_string().into_bytes(), FNV_OFFSET))
}

/// `out`, or `runs/<name><unix seconds>-<process id>` when no output directory was
/// given (`name` is a prefix such as `"search-"`, or empty): a new directory per run,
/// so two runs started in the same second do not share one. Only a run given `--out`
/// can be resumed by rerunning it; the default says so on stderr.
pub fn run_dir_or_default(out: Option<&std::path::Path>, name: &str) -> std::path::PathBuf {
    out.map(std::path::Path::to_path_buf).unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let dir = std::path::PathBuf::from("runs").join(format!("{name}{secs}-{}", std::process::id()));
        eprintln!(
            "output in {} (no --out given: pass --out {} to resume this run by rerunning it)",
            dir.display(),
            dir.display()
        );
        dir
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_strings_and_json_files_resolve() {
        assert_eq!(resolve_architecture("oneshot-s+").unwrap(), Architecture::oneshot_s_plus());
        let text = Architecture::oneshot().to_string();
        assert_eq!(resolve_architecture(&text).unwrap(), Architecture::oneshot());
        let dir = std::env::temp_dir().join(format!("shufflenas-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("arch.json");
        std::fs::write(&file, serde_json::to_string(&Architecture::oneshot()).unwrap()).unwrap();
        assert_eq!(resolve_architecture(file.to_str().unwrap()).unwrap(), Architecture::oneshot());
        std::fs::write(&file, "{not json").unwrap();
        let err = resolve_architecture(file.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read architecture file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_arguments_name_the_problem() {
        assert!(resolve_architecture("mobilenet").unwrap_err().to_string().contains("unknown architecture preset"));
        assert!(resolve_architecture("missing.json").unwrap_err().to_string().contains("missing.json"));
        let short = "0,0;1,1";
        let err = architecture_for(&SearchSpace::oneshot_plus(), short).unwrap_err();
        assert_eq!(err.to_string(), "expected 20 block genes, got 2");
        // A gene list without its ';' is a malformed genome, not an unknown preset.
        let err = resolve_architecture("0,0,3,1").unwrap_err().to_string();
        assert!(err.contains("separated by ';'"), "{err}");
    }
}
