//! SQLite through generated, checked declarations: 100,000 rows inserted
//! with a prepared statement (managed text, copied by SQLite), a scalar
//! function `scale(x)` written in Rust with a Handle as user data, and
//! `sqlite3_exec` calling a managed function for every row it returns.

use cgocheck::{new_slice, Handle};
use cgocheck_example_sqlite::{name_into, Db, RowSink, Scale};
use std::sync::atomic::Ordering;
use std::time::Instant;

const ROWS: i64 = 100_000;

#[test]
fn hundred_thousand_rows_with_callbacks() {
    cgocheck::run(|| {
        let start = Instant::now();
        let db = Db::open();
        db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL)");

        db.exec("BEGIN");
        let insert = db.prepare("INSERT INTO t(id, name, score) VALUES (?1, ?2, ?3)");
        let name = new_slice::<u8>(32);
        for i in 1..=ROWS {
            insert.bind_int(1, i);
            let len = name_into(&name, i);
            insert.bind_text(2, &name, len);
            insert.bind_int(3, i % 100);
            assert!(!insert.step(), "an INSERT returns no row");
            insert.reset();
        }
        drop(insert);
        db.exec("COMMIT");

        let scale = Handle::new(Scale { factor: 3, calls: Default::default() });
        db.register_scale(scale);

        // A prepared query calling the managed scalar function per row.
        let q = db.prepare("SELECT count(*), sum(scale(score)), sum(length(name)) FROM t");
        assert!(q.step());
        let want_sum: i64 = (1..=ROWS).map(|i| (i % 100) * 3).sum();
        let want_len: i64 = (1..=ROWS).map(|i| format!("name-{i}").len() as i64).sum();
        assert_eq!((q.column_int(0), q.column_int(1), q.column_int(2)), (ROWS, want_sum, want_len));
        assert!(!q.step());
        drop(q);
        assert_eq!(scale.value::<Scale>().calls.load(Ordering::Relaxed), ROWS, "scale ran once per row");

        // sqlite3_exec with a managed callback per row, its sink a Handle.
        let sink = Handle::new(RowSink::default());
        db.exec_rows("SELECT id, scale(score) FROM t WHERE id % 10 = 0", sink);
        let rows = sink.value::<RowSink>();
        let want: i64 = (1..=ROWS).filter(|i| i % 10 == 0).map(|i| (i % 100) * 3).sum();
        assert_eq!((rows.rows.load(Ordering::Relaxed), rows.sum.load(Ordering::Relaxed)), (ROWS / 10, want));

        sink.delete();
        scale.delete();
        eprintln!("{ROWS} rows, scale and exec callbacks in {:?}", start.elapsed());
    });
}
