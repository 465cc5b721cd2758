package client

import (
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// rd reads Thrift values from a protocol, keeping the first error so that
// a struct's decoder reads as a plain list of fields.
type rd struct {
	ctx context.Context
	p   thrift.TProtocol
	err error
}

func (r *rd) fail(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

func (r *rd) str() string {
	if r.err != nil {
		return ""
	}
	s, err := r.p.ReadString(r.ctx)
	r.fail(err)
	return s
}

func (r *rd) bin() []byte {
	if r.err != nil {
		return nil
	}
	b, err := r.p.ReadBinary(r.ctx)
	r.fail(err)
	return b
}

func (r *rd) i32() int32 {
	if r.err != nil {
		return 0
	}
	v, err := r.p.ReadI32(r.ctx)
	r.fail(err)
	return v
}

func (r *rd) i64() int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.p.ReadI64(r.ctx)
	r.fail(err)
	return v
}

func (r *rd) f64() float64 {
	if r.err != nil {
		return 0
	}
	v, err := r.p.ReadDouble(r.ctx)
	r.fail(err)
	return v
}

func (r *rd) boolean() bool {
	if r.err != nil {
		return false
	}
	v, err := r.p.ReadBool(r.ctx)
	r.fail(err)
	return v
}

// field is how a struct reads one of its fields: the type it must have on
// the wire and what to do with it.
type field struct {
	t    thrift.TType
	read func()
}

// strct reads a struct whose fields are fs by ID; fields it does not know
// (newer Storm versions add them) or of another type are skipped.
func (r *rd) strct(fs map[int16]field) {
	if r.err != nil {
		return
	}
	if _, err := r.p.ReadStructBegin(r.ctx); err != nil {
		r.fail(err)
		return
	}
	for r.err == nil {
		_, t, id, err := r.p.ReadFieldBegin(r.ctx)
		if err != nil {
			r.fail(err)
			return
		}
		if t == thrift.STOP {
			break
		}
		if f, ok := fs[id]; ok && f.t == t {
			f.read()
		} else {
			r.fail(r.p.Skip(r.ctx, t))
		}
		if r.err == nil {
			r.fail(r.p.ReadFieldEnd(r.ctx))
		}
	}
	if r.err == nil {
		r.fail(r.p.ReadStructEnd(r.ctx))
	}
}

// list reads a list (or set) calling elem once per element.
func (r *rd) list(elem func()) {
	if r.err != nil {
		return
	}
	_, n, err := r.p.ReadListBegin(r.ctx)
	if err != nil {
		r.fail(err)
		return
	}
	for i := 0; i < n && r.err == nil; i++ {
		elem()
	}
	if r.err == nil {
		r.fail(r.p.ReadListEnd(r.ctx))
	}
}

// mapping reads a map calling entry once per key/value pair (entry reads
// both).
func (r *rd) mapping(entry func()) {
	if r.err != nil {
		return
	}
	_, _, n, err := r.p.ReadMapBegin(r.ctx)
	if err != nil {
		r.fail(err)
		return
	}
	for i := 0; i < n && r.err == nil; i++ {
		entry()
	}
	if r.err == nil {
		r.fail(r.p.ReadMapEnd(r.ctx))
	}
}

func (r *rd) strList() []string {
	out := []string{}
	r.list(func() { out = append(out, r.str()) })
	return out
}

// wr writes Thrift values, keeping the first error.
type wr struct {
	ctx context.Context
	p   thrift.TProtocol
	err error
}

func (w *wr) fail(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

func (w *wr) str(s string) {
	if w.err == nil {
		w.fail(w.p.WriteString(w.ctx, s))
	}
}

func (w *wr) bin(b []byte) {
	if w.err == nil {
		w.fail(w.p.WriteBinary(w.ctx, b))
	}
}

func (w *wr) i32(v int32) {
	if w.err == nil {
		w.fail(w.p.WriteI32(w.ctx, v))
	}
}

func (w *wr) boolean(v bool) {
	if w.err == nil {
		w.fail(w.p.WriteBool(w.ctx, v))
	}
}

// strct writes a struct: body writes its fields with field.
func (w *wr) strct(name string, body func()) {
	if w.err != nil {
		return
	}
	w.fail(w.p.WriteStructBegin(w.ctx, name))
	body()
	if w.err == nil {
		w.fail(w.p.WriteFieldStop(w.ctx))
	}
	if w.err == nil {
		w.fail(w.p.WriteStructEnd(w.ctx))
	}
}

// field writes one field: its header, value (written by v) and end.
func (w *wr) field(name string, t thrift.TType, id int16, v func()) {
	if w.err != nil {
		return
	}
	w.fail(w.p.WriteFieldBegin(w.ctx, name, t, id))
	v()
	if w.err == nil {
		w.fail(w.p.WriteFieldEnd(w.ctx))
	}
}

func (w *wr) list(elem thrift.TType, n int, each func(i int)) {
	if w.err != nil {
		return
	}
	w.fail(w.p.WriteListBegin(w.ctx, elem, n))
	for i := 0; i < n && w.err == nil; i++ {
		each(i)
	}
	if w.err == nil {
		w.fail(w.p.WriteListEnd(w.ctx))
	}
}

func (w *wr) mapping(k, v thrift.TType, n int, each func()) {
	if w.err != nil {
		return
	}
	w.fail(w.p.WriteMapBegin(w.ctx, k, v, n))
	each()
	if w.err == nil {
		w.fail(w.p.WriteMapEnd(w.ctx))
	}
}

func (w *wr) strList(ss []string) {
	w.list(thrift.STRING, len(ss), func(i int) { w.str(ss[i]) })
}

// message is a call's arguments or result as a thrift.TStruct.
type message struct {
	write func(w *wr)
	read  func(r *rd)
}

func (m message) Write(ctx context.Context, p thrift.TProtocol) error {
	w := &wr{ctx: ctx, p: p}
	if m.write == nil {
		w.strct("args", func() {})
	} else {
		m.write(w)
	}
	return w.err
}

func (m message) Read(ctx context.Context, p thrift.TProtocol) error {
	r := &rd{ctx: ctx, p: p}
	m.read(r)
	if r.err != nil {
		return fmt.Errorf("decode: %w", r.err)
	}
	return nil
}
