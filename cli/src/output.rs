//! Output files that appear whole or not at all: everything is written to
//! a temporary file beside the destination and renamed over it at the end;
//! an error, a panic or Ctrl-C removes the temporary file instead.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, UInt16Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{CliError, Result, data, usage};

/// A destination written through a temporary file.
pub struct AtomicPath {
    dest: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl AtomicPath {
    /// Plans to write `dest`; checks that its directory exists and that it
    /// is not a directory.
    pub fn new(dest: &Path) -> Result<AtomicPath> {
        if dest.is_dir() {
            return Err(usage(format!(
                "{}: is a directory; give an output file name",
                dest.display()
            )));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| usage(format!("{}: not a file name", dest.display())))?;
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(d) = dir
            && !d.is_dir()
        {
            return Err(usage(format!(
                "{}: the directory {} does not exist; create it first",
                dest.display(),
                d.display()
            )));
        }
        let tmp_name = format!(
            ".{}.semid-tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        );
        let tmp = match dir {
            Some(d) => d.join(tmp_name),
            None => PathBuf::from(tmp_name),
        };
        Ok(AtomicPath {
            dest: dest.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    /// Creates the temporary file.
    pub fn create(&self) -> Result<File> {
        File::create(&self.tmp).map_err(|e| data(format!("{}: {e}", self.tmp.display())))
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the finished temporary file onto the destination.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| data(format!("{}: {e}", self.dest.display())))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Where codes go: a `uint16` `.npy` array or a Parquet file.
pub enum CodesWriter {
    /// `n × L` `<u2` array; the header is written first, with the row count.
    Npy {
        /// The file.
        w: BufWriter<File>,
        /// Rows the header promised.
        rows: usize,
        /// Tokens written so far.
        written: usize,
        /// One block's little-endian bytes, reused.
        bytes: Vec<u8>,
    },
    /// A `codes` column of fixed-size lists of `uint16` (and the input's id
    /// column before it, when one is carried).
    Parquet {
        /// The writer.
        w: Box<ArrowWriter<File>>,
        /// Its schema.
        schema: Arc<Schema>,
        /// Tokens per code.
        levels: usize,
    },
}

/// The output format from a file name's extension.
pub fn codes_format(path: &Path) -> Result<bool> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => Ok(false),
        Some("parquet") | Some("pq") => Ok(true),
        _ => Err(usage(format!(
            "{}: the output name must end in .npy or .parquet (that picks the format)",
            path.display()
        ))),
    }
}

impl CodesWriter {
    /// A `.npy` writer of `rows × levels` codes.
    pub fn npy(file: File, rows: usize, levels: usize) -> Result<CodesWriter> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&semid::npy::header("<u2", &[rows, levels]))
            .map_err(io)?;
        Ok(CodesWriter::Npy {
            w,
            rows,
            written: 0,
            bytes: Vec::new(),
        })
    }

    /// A Parquet writer; `id` is the carried id column's field.
    pub fn parquet(file: File, levels: usize, id: Option<Field>) -> Result<CodesWriter> {
        let item = Arc::new(Field::new("item", DataType::UInt16, false));
        let mut fields = Vec::new();
        if let Some(f) = id {
            fields.push(f);
        }
        fields.push(Field::new(
            "codes",
            DataType::FixedSizeList(item, levels as i32),
            false,
        ));
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let w = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| data(e.to_string()))?;
        Ok(CodesWriter::Parquet {
            w: Box::new(w),
            schema,
            levels,
        })
    }

    /// Appends a block of codes (row-major), with its ids for Parquet.
    pub fn write(&mut self, codes: &[u16], ids: Option<ArrayRef>) -> Result<()> {
        match self {
            CodesWriter::Npy {
                w, written, bytes, ..
            } => {
                bytes.clear();
                bytes.extend(codes.iter().flat_map(|c| c.to_le_bytes()));
                w.write_all(bytes).map_err(io)?;
                *written += codes.len();
                Ok(())
            }
            CodesWriter::Parquet { w, schema, levels } => {
                let mut b = FixedSizeListBuilder::with_capacity(
                    UInt16Builder::with_capacity(codes.len()),
                    *levels as i32,
                    codes.len() / *levels,
                )
                .with_field(Arc::new(Field::new("item", DataType::UInt16, false)));
                for row in codes.chunks_exact(*levels) {
                    b.values().append_slice(row);
                    b.append(true);
                }
                let mut cols: Vec<ArrayRef> = Vec::new();
                if let Some(ids) = ids {
                    cols.push(ids);
                }
                cols.push(Arc::new(b.finish()));
                let batch =
                    RecordBatch::try_new(schema.clone(), cols).map_err(|e| data(e.to_string()))?;
                w.write(&batch).map_err(|e| data(e.to_string()))
            }
        }
    }

    /// Flushes, checks the row count, and syncs the file.
    pub fn finish(self, levels: usize) -> Result<()> {
        match self {
            CodesWriter::Npy {
                w, rows, written, ..
            } => {
                if written != rows * levels {
                    return Err(data(format!(
                        "wrote {} rows where the input promised {rows}; the input changed while it was read",
                        written / levels.max(1)
                    )));
                }
                let f = w.into_inner().map_err(|e| io(e.into_error()))?;
                f.sync_all().map_err(io)
            }
            CodesWriter::Parquet { w, .. } => {
                let f = w.into_inner().map_err(|e| data(e.to_string()))?;
                f.sync_all().map_err(io)
            }
        }
    }
}

fn io(e: std::io::Error) -> CliError {
    data(format!("writing the output: {e}"))
}
