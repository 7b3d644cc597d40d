//! Embeddings from `.npy` and Parquet files, read a block of rows at a time
//! so that memory stays bounded whatever the file's size.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use semid::npy::NpyReader;

use crate::error::{Result, data, usage};

/// The two input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A 2-D `.npy` array.
    Npy,
    /// A Parquet file with a list column of floats.
    Parquet,
}

/// Checks that `path` names a file (exit 2 otherwise: the command line is
/// wrong, not the data).
pub fn existing_file(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(usage(format!(
            "{}: is a directory; give the {what} file",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(usage(format!(
            "{}: {e}; check the {what} path",
            path.display()
        ))),
    }
}

/// The format of `path`, from its first bytes (`\x93NUMPY` or `PAR1`).
pub fn sniff(path: &Path) -> Result<Format> {
    let mut head = [0u8; 6];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| data(format!("{}: {e}", path.display())))?;
    if head[..n].starts_with(b"\x93NUMPY") {
        Ok(Format::Npy)
    } else if head[..n].starts_with(b"PAR1") {
        Ok(Format::Parquet)
    } else {
        Err(data(format!(
            "{}: neither a .npy file (magic \\x93NUMPY) nor a Parquet file (magic PAR1); \
             save embeddings with numpy.save or DataFrame.to_parquet",
            path.display()
        )))
    }
}

/// `--input` and `--column`: the embeddings a command reads.
#[derive(clap::Args, Debug)]
pub struct Source {
    /// Embeddings: a 2-D .npy (float16, bfloat16, float32, float64) or a
    /// Parquet file with a list-of-floats column; row i is item i.
    #[arg(long)]
    pub input: PathBuf,
    /// Parquet: the embedding column (default: the only list-of-floats
    /// column).
    #[arg(long)]
    pub column: Option<String>,
}

/// Which columns of a Parquet file to read.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// The embedding column; `None`: the only list-of-floats column.
    pub embedding: Option<String>,
    /// A column carried to the output beside the codes (item ids).
    pub id: Option<String>,
}

/// Embeddings read a block at a time.
pub enum Input {
    /// `.npy`.
    Npy(NpyReader),
    /// Parquet.
    Parquet(Box<ParquetInput>),
}

/// A Parquet file's embedding column, batch by batch.
pub struct ParquetInput {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    column: String,
    id: Option<String>,
    rows: usize,
    dim: usize,
    /// Rows handed out so far.
    done: usize,
}

impl Input {
    /// Opens `path` (either format), reading blocks of up to `block_rows`.
    pub fn open(path: &Path, columns: &Columns, block_rows: usize) -> Result<Input> {
        existing_file(path, "input")?;
        match sniff(path)? {
            Format::Npy => {
                if columns.embedding.is_some() || columns.id.is_some() {
                    return Err(usage(format!(
                        "{}: --column and --id-column apply to Parquet input; this is a .npy file",
                        path.display()
                    )));
                }
                Ok(Input::Npy(NpyReader::open(path)?))
            }
            Format::Parquet => Ok(Input::Parquet(Box::new(ParquetInput::open(
                path, columns, block_rows,
            )?))),
        }
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        match self {
            Input::Npy(r) => r.rows(),
            Input::Parquet(p) => p.rows,
        }
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        match self {
            Input::Npy(r) => r.dim(),
            Input::Parquet(p) => p.dim,
        }
    }

    /// The id column's name and type, when one is carried.
    pub fn id_field(&self) -> Option<&str> {
        match self {
            Input::Npy(_) => None,
            Input::Parquet(p) => p.id.as_deref(),
        }
    }

    /// Replaces `out` with the next block of rows (row-major f32) and
    /// returns the block's ids when an id column is carried; `Ok(None)`
    /// with an empty `out` at the end.
    pub fn next_block(
        &mut self,
        block_rows: usize,
        out: &mut Vec<f32>,
    ) -> Result<Option<Option<ArrayRef>>> {
        match self {
            Input::Npy(r) => {
                let n = r.read_rows(block_rows, out)?;
                Ok((n > 0).then_some(None))
            }
            Input::Parquet(p) => p.next_block(out),
        }
    }

    /// Every row at once: `(data, dim)`.
    pub fn read_all(mut self) -> Result<(Vec<f32>, usize)> {
        let dim = self.dim();
        let mut all = Vec::with_capacity(self.rows().saturating_mul(dim));
        let mut block = Vec::new();
        while self.next_block(65_536, &mut block)?.is_some() {
            all.extend_from_slice(&block);
        }
        Ok((all, dim))
    }
}

/// Whether `t` is a float type semid reads.
fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// The element type of a list-of-floats column, if it is one.
fn float_list(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if is_float(f.data_type()) =>
        {
            Some(f.data_type())
        }
        _ => None,
    }
}

/// A Parquet error on `path`, with the fix for codecs this build leaves out.
fn parquet_err(path: &Path, e: &dyn std::fmt::Display) -> crate::error::CliError {
    let m = e.to_string();
    if let Some(codec) = m.split("Disabled feature at compile time: ").nth(1) {
        return data(format!(
            "{}: compressed with {codec}, which this build does not read (it reads snappy, gzip, lz4 and uncompressed \
             Parquet: zstd and brotli are left out); rewrite it with snappy \
             (pyarrow: compression='snappy'; Spark: the default)",
            path.display()
        ));
    }
    data(format!("{}: {m}", path.display()))
}

/// What went wrong in rows `start..` of `path`, with the row made absolute
/// (the library counts rows within the block it was given).
pub fn in_rows(path: &Path, start: usize, e: semid::Error) -> crate::error::CliError {
    match e {
        semid::Error::NonFinite { what, row, col } => data(format!(
            "{}: {}",
            path.display(),
            semid::Error::NonFinite {
                what,
                row: start + row,
                col
            }
        )),
        e => data(format!("{}: in rows from {start}: {e}", path.display())),
    }
}

impl ParquetInput {
    fn open(path: &Path, columns: &Columns, block_rows: usize) -> Result<ParquetInput> {
        let at = |e: &dyn std::fmt::Display| parquet_err(path, e);
        let file = File::open(path).map_err(|e| at(&e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| at(&e))?;
        let schema = builder.schema().clone();
        let rows = usize::try_from(builder.metadata().file_metadata().num_rows())
            .map_err(|_| at(&"negative row count in the footer"))?;
        let lists: Vec<&str> = schema
            .fields()
            .iter()
            .filter(|f| float_list(f.data_type()).is_some())
            .map(|f| f.name().as_str())
            .collect();
        let describe = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let column = match &columns.embedding {
            Some(c) => {
                let f = schema.field_with_name(c).map_err(|_| {
                    usage(format!(
                        "{}: no column `{c}`; the columns are {}",
                        path.display(),
                        describe()
                    ))
                })?;
                if float_list(f.data_type()).is_none() {
                    return Err(data(format!(
                        "{}: column `{c}` is {}, not a list of floats (one embedding per row)",
                        path.display(),
                        f.data_type()
                    )));
                }
                c.clone()
            }
            None => match lists[..] {
                [one] => one.to_string(),
                [] => {
                    return Err(data(format!(
                        "{}: no column is a list of floats (one embedding per row, as Spark's \
                         array<float> or pandas' lists of float32); the columns are {}",
                        path.display(),
                        describe()
                    )));
                }
                _ => {
                    return Err(usage(format!(
                        "{}: several list-of-float columns ({}); pick one with --column",
                        path.display(),
                        lists.join(", ")
                    )));
                }
            },
        };
        if let Some(id) = &columns.id
            && schema.field_with_name(id).is_err()
        {
            return Err(usage(format!(
                "{}: no column `{id}` for --id-column; the columns are {}",
                path.display(),
                describe()
            )));
        }
        let roots: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() == &column || Some(f.name()) == columns.id.as_ref())
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(block_rows.max(1))
            .build()
            .map_err(|e| at(&e))?;
        let mut p = ParquetInput {
            path: path.to_path_buf(),
            reader,
            column,
            id: columns.id.clone(),
            rows,
            dim: 0,
            done: 0,
        };
        p.dim = p.find_dim(&schema)?;
        Ok(p)
    }

    /// The embedding width: a fixed-size list's, else the first row's
    /// (read from a separate pass over the first batch).
    fn find_dim(&mut self, schema: &arrow_schema::Schema) -> Result<usize> {
        let f = schema.field_with_name(&self.column).expect("checked");
        if let DataType::FixedSizeList(_, n) = f.data_type() {
            return Ok(*n as usize);
        }
        // A variable list: open the file again and look at row 0.
        let file = File::open(&self.path).map_err(|e| self.err(&e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| self.err(&e))?;
        let idx = schema.index_of(&self.column).expect("checked");
        let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
        let mut r = b
            .with_projection(mask)
            .with_batch_size(1)
            .with_limit(1)
            .build()
            .map_err(|e| self.err(&e))?;
        match r.next() {
            None => Ok(0),
            Some(batch) => {
                let batch = batch.map_err(|e| self.err(&e))?;
                let col = batch.column(0);
                let len = match col.data_type() {
                    DataType::List(_) => col.as_list::<i32>().value_length(0) as usize,
                    _ => col.as_list::<i64>().value_length(0) as usize,
                };
                if len == 0 {
                    return Err(data(format!(
                        "{}: row 0 of column `{}` is an empty list; every row needs its embedding",
                        self.path.display(),
                        self.column
                    )));
                }
                Ok(len)
            }
        }
    }

    fn err(&self, e: &dyn std::fmt::Display) -> crate::error::CliError {
        parquet_err(&self.path, e)
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<Option<ArrayRef>>> {
        out.clear();
        let batch: RecordBatch = match self.reader.next() {
            None => return Ok(None),
            Some(b) => b.map_err(|e| self.err(&e))?,
        };
        let col = batch
            .column_by_name(&self.column)
            .expect("projected")
            .clone();
        self.floats(&col, out)?;
        let ids = self
            .id
            .as_ref()
            .map(|n| batch.column_by_name(n).expect("projected").clone());
        self.done += batch.num_rows();
        Ok(Some(ids))
    }

    /// Appends a batch's list column to `out`, checking nulls and widths.
    fn floats(&self, col: &ArrayRef, out: &mut Vec<f32>) -> Result<()> {
        let n = col.len();
        if col.null_count() > 0 {
            let r = (0..n).find(|&i| col.is_null(i)).unwrap_or(0);
            return Err(data(format!(
                "{}: row {} of column `{}` is null; drop or fill rows without an embedding",
                self.path.display(),
                self.done + r,
                self.column
            )));
        }
        // (values, start, end) of the batch's rows in the child array,
        // after checking every row's width.
        let (values, start, end) = match col.data_type() {
            DataType::FixedSizeList(_, _) => {
                let l = col.as_fixed_size_list();
                let s = l.value_offset_at(0);
                (l.values().clone(), s, s + n * self.dim)
            }
            DataType::List(_) => {
                let l = col.as_list::<i32>();
                let offs: Vec<usize> = l.value_offsets().iter().map(|&o| o as usize).collect();
                self.check_widths(&offs)?;
                (l.values().clone(), offs[0], offs[n])
            }
            _ => {
                let l = col.as_list::<i64>();
                let offs: Vec<usize> = l.value_offsets().iter().map(|&o| o as usize).collect();
                self.check_widths(&offs)?;
                (l.values().clone(), offs[0], offs[n])
            }
        };
        let values = values.slice(start, end - start);
        if values.null_count() > 0 {
            let i = (0..values.len()).find(|&i| values.is_null(i)).unwrap_or(0);
            return Err(data(format!(
                "{}: row {} of column `{}` holds a null value; fill or drop it",
                self.path.display(),
                self.done + i / self.dim.max(1),
                self.column
            )));
        }
        out.reserve(values.len());
        match values.data_type() {
            DataType::Float32 => {
                out.extend_from_slice(values.as_primitive::<Float32Type>().values())
            }
            DataType::Float64 => out.extend(
                values
                    .as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .map(|&v| v as f32),
            ),
            _ => out.extend(
                values
                    .as_primitive::<Float16Type>()
                    .values()
                    .iter()
                    .map(|v| v.to_f32()),
            ),
        }
        Ok(())
    }

    /// Every row of a variable list must have `dim` values.
    fn check_widths(&self, offs: &[usize]) -> Result<()> {
        for (r, w) in offs.windows(2).enumerate() {
            let len = w[1] - w[0];
            if len != self.dim {
                return Err(data(format!(
                    "{}: row {} of column `{}` has {len} values where row 0 has {}; \
                     every embedding needs the same width (ragged rows)",
                    self.path.display(),
                    self.done + r,
                    self.column,
                    self.dim
                )));
            }
        }
        Ok(())
    }
}
