//! Loading weights from a trainer checkpoint into a module, checked tensor by tensor,
//! so that a checkpoint of another architecture or space is an error, never a panic or
//! a silently truncated load.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};

use crate::trainer::{LATEST_FILE, TrainError};

fn error(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.display().to_string(), reason: reason.to_string() }
}

/// The `model.mpk` of a checkpoint given as a trainer run directory (its
/// `latest.json`), a checkpoint folder, or the file itself.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the missing or unreadable file.
pub fn model_file(path: &Path) -> Result<PathBuf, TrainError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(error(path, "no such checkpoint"));
    }
    let folder = if path.join(LATEST_FILE).is_file() { latest_checkpoint(path)? } else { path.to_path_buf() };
    let model = folder.join("model.mpk");
    if model.is_file() { Ok(model) } else { Err(error(&model, "no such checkpoint")) }
}

/// The folder of the newest complete checkpoint of run directory `dir`, as its
/// `latest.json` names it.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming `latest.json` when it cannot be read, or when the
/// name in it is not a plain folder name inside `dir` (`..`, an absolute path, a path
/// with separators: a hand-edited or foreign file).
pub(crate) fn latest_checkpoint(dir: &Path) -> Result<PathBuf, TrainError> {
    let latest = dir.join(LATEST_FILE);
    let text = std::fs::read_to_string(&latest).map_err(|e| error(&latest, e))?;
    let name: String = serde_json::from_str(&text).map_err(|e| error(&latest, e))?;
    let mut parts = Path::new(&name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) => Ok(dir.join(name)),
        _ => Err(error(&latest, format!("names '{name}', which is not a checkpoint folder of this run directory"))),
    }
}

/// Loads the checkpoint at `path` (see [`model_file`]) into `fresh`, a module built
/// for the architecture the checkpoint should hold.
///
/// # Errors
/// [`TrainError::Checkpoint`] when the file is missing or corrupt, or when its tensors
/// do not fit `fresh` (the reason says "does not match" and gives the first difference).
pub fn load_checked<B: Backend, M: Module<B>>(fresh: M, path: &Path, device: &B::Device) -> Result<M, TrainError> {
    let file = model_file(path)?;
    let expected = tensor_shapes(&fresh);
    let record = read_record::<B, M::Record>(&file, device)?;
    // Burn also asserts when a record's lists of layers have other lengths than the
    // module's: an error too.
    let loaded = quietly_catch_panic(|| fresh.load_record(record))
        .map_err(|_| error(&file, "does not match: its lists of layers have other lengths than the module's"))?;
    let got = tensor_shapes(&loaded);
    if got != expected {
        let first = expected.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(expected.len().min(got.len()));
        return Err(error(
            &file,
            format!(
                "does not match: {} tensors in the file, {} expected; first difference at tensor {first}: {:?} in \
                 the file, {:?} expected",
                got.len(),
                expected.len(),
                got.get(first),
                expected.get(first)
            ),
        ));
    }
    Ok(loaded)
}

/// Reads the full-precision MessagePack record `file` (a `.mpk` path) written by
/// Burn's `NamedMpkFileRecorder`: a module's or an optimizer's.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file when it is missing or corrupt. Burn
/// asserts (panics) when a stored tensor's rank differs from the record's (a corrupt or
/// foreign file): an error too.
pub(crate) fn read_record<B: Backend, R: burn::record::Record<B>>(
    file: &Path,
    device: &B::Device,
) -> Result<R, TrainError> {
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    quietly_catch_panic(|| Recorder::<B>::load(&recorder, file.with_extension(""), device))
        .map_err(|()| error(file, "corrupt, or not a record of this module (reading it panicked in Burn)"))?
        .map_err(|e| error(file, recorder_problem(&e)))
}

/// Burn's recorder error in words (its `Display` is its `Debug`).
fn recorder_problem(e: &burn::record::RecorderError) -> String {
    use burn::record::RecorderError;
    match e {
        RecorderError::FileNotFound(_) => "missing".into(),
        RecorderError::DeserializeError(detail) | RecorderError::Unknown(detail) => {
            let detail: String = detail.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
            format!("truncated, corrupt, or not a record of this module ({detail})")
        }
    }
}

/// Runs `f`, turning a panic into an error without printing it.
///
/// Only this thread's panic message is silenced: a panic hook installed once per process
/// asks a thread-local flag, and hands every other panic to the hook that was there
/// before, so panics on other threads meanwhile still print.
fn quietly_catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    use std::cell::Cell;
    use std::sync::Once;
    thread_local! {
        static QUIET: Cell<bool> = const { Cell::new(false) };
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|quiet| quiet.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|quiet| quiet.set(was_quiet));
    result.map_err(|_| ())
}

/// Shapes of every float tensor of a module, in visiting order. Reading each value
/// also initialises lazily initialised parameters in place (Burn initialises a fresh
/// module's parameters on first use, and a clone made before that draws its own).
pub fn tensor_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut visitor = Shapes(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

#[cfg(test)]
mod tests {
    use super::{latest_checkpoint, quietly_catch_panic};
    use crate::trainer::LATEST_FILE;

    #[test]
    fn latest_json_may_name_only_a_folder_of_the_run_directory() {
        let dir = std::env::temp_dir().join(format!("shufflenas-latest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str| std::fs::write(dir.join(LATEST_FILE), serde_json::to_string(name).unwrap()).unwrap();
        write("checkpoint-0003");
        assert_eq!(latest_checkpoint(&dir).unwrap(), dir.join("checkpoint-0003"));
        for bad in ["../elsewhere", "/etc", "a/b", "..", ""] {
            write(bad);
            let err = latest_checkpoint(&dir).unwrap_err().to_string();
            assert!(err.contains(LATEST_FILE) && err.contains("not a checkpoint folder"), "{bad}: {err}");
        }
        std::fs::write(dir.join(LATEST_FILE), b"{not json").unwrap();
        assert!(latest_checkpoint(&dir).unwrap_err().to_string().contains(LATEST_FILE));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_panic_becomes_an_error_and_a_value_passes_through() {
        assert_eq!(quietly_catch_panic(|| 7), Ok(7));
        assert_eq!(quietly_catch_panic(|| -> i32 { panic!("corrupt record") }), Err(()));
        // Nested, and on another thread: each call still returns its own result. (Which
        // messages print is not asserted: the panic hook is process-wide, shared with the
        // other tests of this binary.)
        let outer = quietly_catch_panic(|| {
            assert_eq!(quietly_catch_panic(|| 1), Ok(1));
            panic!("after the inner call");
        });
        assert_eq!(outer, Err(()));
        let other = std::thread::spawn(|| quietly_catch_panic(|| -> () { panic!("on another thread") }));
        assert_eq!(other.join().unwrap(), Err(()));
    }
}
