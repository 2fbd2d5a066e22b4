// The Go cgo twin of this example (src/lib.rs and tests/sqlite.rs), for
// the line counts in the README: 100,000 rows through a prepared
// statement, a Go scalar function whose user data is a cgo.Handle, and
// sqlite3_exec calling a Go function per row. Not built by CI.
package main

/*
#cgo LDFLAGS: -lsqlite3
#include <sqlite3.h>
#include <stdlib.h>
extern void goScale(sqlite3_context *ctx, int argc, sqlite3_value **argv);
extern int goRow(void *sink, int n, char **values, char **names);
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"strconv"
	"sync/atomic"
	"unsafe"
)

type scale struct {
	factor int64
	calls  atomic.Int64
}

type rowSink struct{ rows, sum atomic.Int64 }

//export goScale
func goScale(ctx *C.sqlite3_context, argc C.int, argv **C.sqlite3_value) {
	s := cgo.Handle(uintptr(C.sqlite3_user_data(ctx))).Value().(*scale)
	s.calls.Add(1)
	x := C.sqlite3_value_int64(*argv)
	C.sqlite3_result_int64(ctx, x*C.sqlite3_int64(s.factor))
}

//export goRow
func goRow(sink unsafe.Pointer, n C.int, values **C.char, names **C.char) C.int {
	s := cgo.Handle(uintptr(sink)).Value().(*rowSink)
	vals := unsafe.Slice(values, n)
	v, err := strconv.ParseInt(C.GoString(vals[1]), 10, 64)
	if err != nil {
		panic(err)
	}
	s.rows.Add(1)
	s.sum.Add(v)
	return 0
}

type db struct{ db *C.sqlite3 }

func (d db) ok(rc C.int, what string) {
	if rc != C.SQLITE_OK {
		panic(fmt.Sprintf("%s: SQLite error %d: %s", what, rc, C.GoString(C.sqlite3_errmsg(d.db))))
	}
}

func open() db {
	var d db
	name := C.CString(":memory:")
	defer C.free(unsafe.Pointer(name))
	d.ok(C.sqlite3_open(name, &d.db), "sqlite3_open")
	return d
}

func (d db) exec(sql string, cb *[0]byte, arg unsafe.Pointer) {
	s := C.CString(sql)
	defer C.free(unsafe.Pointer(s))
	d.ok(C.sqlite3_exec(d.db, s, cb, arg, nil), "sqlite3_exec")
}

func (d db) prepare(sql string) *C.sqlite3_stmt {
	s := C.CString(sql)
	defer C.free(unsafe.Pointer(s))
	var stmt *C.sqlite3_stmt
	d.ok(C.sqlite3_prepare_v2(d.db, s, -1, &stmt, nil), "sqlite3_prepare_v2")
	return stmt
}

func main() {
	const rows = 100000
	d := open()
	defer C.sqlite3_close(d.db)
	d.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER NOT NULL)", nil, nil)
	d.exec("BEGIN", nil, nil)
	insert := d.prepare("INSERT INTO t(id, name, score) VALUES (?1, ?2, ?3)")
	for i := int64(1); i <= rows; i++ {
		C.sqlite3_bind_int64(insert, 1, C.sqlite3_int64(i))
		name := C.CString(fmt.Sprintf("name-%d", i))
		C.sqlite3_bind_text(insert, 2, name, -1, (*[0]byte)(C.free))
		C.sqlite3_bind_int64(insert, 3, C.sqlite3_int64(i%100))
		if C.sqlite3_step(insert) != C.SQLITE_DONE {
			panic("insert")
		}
		C.sqlite3_reset(insert)
	}
	C.sqlite3_finalize(insert)
	d.exec("COMMIT", nil, nil)

	sc := &scale{factor: 3}
	h := cgo.NewHandle(sc)
	defer h.Delete()
	name := C.CString("scale")
	defer C.free(unsafe.Pointer(name))
	d.ok(C.sqlite3_create_function_v2(d.db, name, 1, C.SQLITE_UTF8|C.SQLITE_DETERMINISTIC,
		unsafe.Pointer(uintptr(h)), (*[0]byte)(C.goScale), nil, nil, nil), "sqlite3_create_function_v2")

	q := d.prepare("SELECT count(*), sum(scale(score)) FROM t")
	if C.sqlite3_step(q) != C.SQLITE_ROW {
		panic("query")
	}
	fmt.Println(C.sqlite3_column_int64(q, 0), C.sqlite3_column_int64(q, 1), sc.calls.Load())
	C.sqlite3_finalize(q)

	sink := &rowSink{}
	hs := cgo.NewHandle(sink)
	defer hs.Delete()
	d.exec("SELECT id, scale(score) FROM t WHERE id % 10 = 0", (*[0]byte)(C.goRow), unsafe.Pointer(uintptr(hs)))
	fmt.Println(sink.rows.Load(), sink.sum.Load())
}
