// BSON: decoding into a small tree, encoding back, and MongoDB's order
// of values.  A decoded document keeps the bytes it came from (raw), so a
// stored document is written back out without being encoded again.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Doc is a BSON document: its elements in order, and while it is
// unchanged, its encoding.
type Doc struct {
	E   []Elem
	raw []byte
}

// Elem is one element of a document.
type Elem struct {
	K string
	V any
}

// The Go types of BSON values; null is nil, double float64, string
// string, document *Doc, bool bool, int32 int32, int64 int64.
type (
	Array  []any
	Binary struct {
		Sub  byte
		Data []byte
	}
	ObjectID   [12]byte
	DateTime   int64 // milliseconds since the epoch
	Timestamp  uint64
	Regex      struct{ Pattern, Options string }
	Decimal128 [16]byte
	MinKey     struct{}
	MaxKey     struct{}
	Undefined  struct{}
	// Raw keeps the rarely used types as their bytes: JavaScript,
	// symbol, DBPointer, code with scope.
	Raw struct {
		T byte
		B []byte
	}
)

var errBSON = errors.New("malformed BSON")

// D builds a document from key, value pairs.
func D(kv ...any) *Doc {
	d := &Doc{E: make([]Elem, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		d.E = append(d.E, Elem{kv[i].(string), kv[i+1]})
	}
	return d
}

// Get returns the value of key and whether it is there.
func (d *Doc) Get(key string) (any, bool) {
	if d == nil {
		return nil, false
	}
	for i := range d.E {
		if d.E[i].K == key {
			return d.E[i].V, true
		}
	}
	return nil, false
}

// Set replaces key's value or appends it.
func (d *Doc) Set(key string, v any) {
	d.raw = nil
	for i := range d.E {
		if d.E[i].K == key {
			d.E[i].V = v
			return
		}
	}
	d.E = append(d.E, Elem{key, v})
}

// Delete removes key; whether it was there.
func (d *Doc) Delete(key string) bool {
	for i := range d.E {
		if d.E[i].K == key {
			d.raw = nil
			d.E = append(d.E[:i], d.E[i+1:]...)
			return true
		}
	}
	return false
}

// Raw returns the document's encoding (cached).
func (d *Doc) Raw() []byte {
	if d.raw == nil {
		d.raw = appendDoc(nil, d)
	}
	return d.raw
}

// Clone copies the document deeply (sub-documents and arrays).
func (d *Doc) Clone() *Doc {
	c := &Doc{E: make([]Elem, len(d.E))}
	for i, e := range d.E {
		c.E[i] = Elem{e.K, cloneValue(e.V)}
	}
	return c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case *Doc:
		return x.Clone()
	case Array:
		a := make(Array, len(x))
		for i := range x {
			a[i] = cloneValue(x[i])
		}
		return a
	}
	return v
}

// --- decoding ---------------------------------------------------------------

// alias makes a string of bytes without copying them.  Decoded documents
// refer to the buffer they were read from; a message's buffer is its own
// and never written again, and a stored document is decoded from a copy
// of its own (own()), so the bytes under a string never change.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeDoc parses one document that fills b; the result refers to b.
func decodeDoc(b []byte) (*Doc, error) {
	var stack [32]Elem
	dec := decoder{stack: stack[:0]}
	d, n, err := dec.doc(b)
	if err == nil && n != len(b) {
		err = errBSON
	}
	return d, err
}

func readDoc(b []byte) (*Doc, int, error) {
	var stack [32]Elem
	dec := decoder{stack: stack[:0]}
	return dec.doc(b)
}

// decoder carves documents and their elements from slabs, a few
// allocations a message rather than two a document.
type decoder struct {
	stack []Elem // the elements of the documents being read
	elems []Elem
	docs  []Doc
}

func (dec *decoder) newDoc() *Doc {
	if len(dec.docs) == cap(dec.docs) {
		dec.docs = make([]Doc, 0, 8)
	}
	dec.docs = dec.docs[:len(dec.docs)+1]
	return &dec.docs[len(dec.docs)-1]
}

// carve copies the top n elements of the stack into the slab.
func (dec *decoder) carve(mark int) []Elem {
	n := len(dec.stack) - mark
	if n == 0 {
		return nil
	}
	if cap(dec.elems)-len(dec.elems) < n {
		dec.elems = make([]Elem, 0, max(n, 16))
	}
	at := len(dec.elems)
	dec.elems = append(dec.elems, dec.stack[mark:]...)
	dec.stack = dec.stack[:mark]
	return dec.elems[at : at+n : at+n]
}

func (dec *decoder) doc(b []byte) (*Doc, int, error) {
	if len(b) < 5 {
		return nil, 0, errBSON
	}
	size := int(int32(binary.LittleEndian.Uint32(b)))
	if size < 5 || size > len(b) || b[size-1] != 0 {
		return nil, 0, errBSON
	}
	mark := len(dec.stack)
	p := 4
	for p < size-1 {
		t := b[p]
		p++
		end := bytes.IndexByte(b[p:size], 0)
		if end < 0 {
			return nil, 0, errBSON
		}
		key := alias(b[p : p+end])
		p += end + 1
		v, n, err := dec.value(t, b[p:size-1])
		if err != nil {
			return nil, 0, err
		}
		p += n
		dec.stack = append(dec.stack, Elem{key, v})
	}
	d := dec.newDoc()
	d.raw = b[:size:size]
	d.E = dec.carve(mark)
	return d, size, nil
}

func readCString(b []byte) (string, int, error) {
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		return "", 0, errBSON
	}
	return alias(b[:end]), end + 1, nil
}

func readString(b []byte) (string, int, error) {
	if len(b) < 5 {
		return "", 0, errBSON
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 || 4+n > len(b) || b[3+n] != 0 {
		return "", 0, errBSON
	}
	return alias(b[4 : 3+n]), 4 + n, nil
}

// fixedSize: the bytes a value of a type takes at least.
var fixedSize = [256]int{0x01: 8, 0x05: 5, 0x07: 12, 0x08: 1, 0x09: 8, 0x0F: 4, 0x10: 4,
	0x11: 8, 0x12: 8, 0x13: 16}

func (dec *decoder) value(t byte, b []byte) (any, int, error) {
	le := binary.LittleEndian
	if len(b) < fixedSize[t] {
		return nil, 0, errBSON
	}
	switch t {
	case 0x01:
		return math.Float64frombits(le.Uint64(b)), 8, nil
	case 0x02:
		return readString(b)
	case 0x03:
		return dec.doc(b)
	case 0x04:
		d, n, err := dec.doc(b)
		if err != nil {
			return nil, 0, err
		}
		a := make(Array, len(d.E))
		for i := range d.E {
			a[i] = d.E[i].V
		}
		return a, n, nil
	case 0x05:
		n := int(int32(le.Uint32(b)))
		if n < 0 || 5+n > len(b) {
			return nil, 0, errBSON
		}
		return Binary{b[4], b[5 : 5+n : 5+n]}, 5 + n, nil
	case 0x06:
		return Undefined{}, 0, nil
	case 0x07:
		var o ObjectID
		copy(o[:], b)
		return o, 12, nil
	case 0x08:
		return b[0] != 0, 1, nil
	case 0x09:
		return DateTime(int64(le.Uint64(b))), 8, nil
	case 0x0A:
		return nil, 0, nil
	case 0x0B:
		p, n1, err := readCString(b)
		if err != nil {
			return nil, 0, err
		}
		o, n2, err := readCString(b[n1:])
		if err != nil {
			return nil, 0, err
		}
		return Regex{p, o}, n1 + n2, nil
	case 0x0C: // DBPointer: string, ObjectId
		_, n, err := readString(b)
		if err != nil || len(b) < n+12 {
			return nil, 0, errBSON
		}
		return Raw{t, b[: n+12 : n+12]}, n + 12, nil
	case 0x0D, 0x0E:
		_, n, err := readString(b)
		if err != nil {
			return nil, 0, err
		}
		return Raw{t, b[:n:n]}, n, nil
	case 0x0F:
		n := int(int32(le.Uint32(b)))
		if n < 4 || n > len(b) {
			return nil, 0, errBSON
		}
		return Raw{t, b[:n:n]}, n, nil
	case 0x10:
		return int32(le.Uint32(b)), 4, nil
	case 0x11:
		return Timestamp(le.Uint64(b)), 8, nil
	case 0x12:
		return int64(le.Uint64(b)), 8, nil
	case 0x13:
		var x Decimal128
		copy(x[:], b)
		return x, 16, nil
	case 0xFF:
		return MinKey{}, 0, nil
	case 0x7F:
		return MaxKey{}, 0, nil
	}
	return nil, 0, fmt.Errorf("BSON type 0x%02x is not known", t)
}

// --- encoding ---------------------------------------------------------------

func appendDoc(dst []byte, d *Doc) []byte {
	if d.raw != nil {
		return append(dst, d.raw...)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i := range d.E {
		dst = appendElem(dst, d.E[i].K, d.E[i].V)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

func appendArray(dst []byte, a Array) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	var kb [20]byte
	for i, v := range a {
		dst = appendElem(dst, string(strconv.AppendInt(kb[:0], int64(i), 10)), v)
	}
	dst = append(dst, 0)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

func appendHead(dst []byte, t byte, key string) []byte {
	dst = append(dst, t)
	dst = append(dst, key...)
	return append(dst, 0)
}

func appendU32(dst []byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(dst, v)
}

func appendU64(dst []byte, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(dst, v)
}

func appendElem(dst []byte, key string, v any) []byte {
	switch x := v.(type) {
	case float64:
		return appendU64(appendHead(dst, 0x01, key), math.Float64bits(x))
	case string:
		dst = appendU32(appendHead(dst, 0x02, key), uint32(len(x)+1))
		return append(append(dst, x...), 0)
	case *Doc:
		return appendDoc(appendHead(dst, 0x03, key), x)
	case Array:
		return appendArray(appendHead(dst, 0x04, key), x)
	case Binary:
		dst = appendU32(appendHead(dst, 0x05, key), uint32(len(x.Data)))
		return append(append(dst, x.Sub), x.Data...)
	case Undefined:
		return appendHead(dst, 0x06, key)
	case ObjectID:
		return append(appendHead(dst, 0x07, key), x[:]...)
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		return append(appendHead(dst, 0x08, key), b)
	case DateTime:
		return appendU64(appendHead(dst, 0x09, key), uint64(x))
	case nil:
		return appendHead(dst, 0x0A, key)
	case Regex:
		dst = appendHead(dst, 0x0B, key)
		dst = append(append(dst, x.Pattern...), 0)
		return append(append(dst, x.Options...), 0)
	case Raw:
		return append(appendHead(dst, x.T, key), x.B...)
	case int32:
		return appendU32(appendHead(dst, 0x10, key), uint32(x))
	case Timestamp:
		return appendU64(appendHead(dst, 0x11, key), uint64(x))
	case int64:
		return appendU64(appendHead(dst, 0x12, key), uint64(x))
	case int:
		return appendU64(appendHead(dst, 0x12, key), uint64(x))
	case Decimal128:
		return append(appendHead(dst, 0x13, key), x[:]...)
	case MinKey:
		return appendHead(dst, 0xFF, key)
	case MaxKey:
		return appendHead(dst, 0x7F, key)
	}
	panic(fmt.Sprintf("cannot encode %T", v))
}

// --- order and equality -------------------------------------------------------

// rank is a value's place in MongoDB's order of types.
func rank(v any) int {
	switch v.(type) {
	case MinKey:
		return 1
	case nil, Undefined:
		return 2
	case float64, int32, int64, int, Decimal128:
		return 3
	case string:
		return 4
	case *Doc:
		return 5
	case Array:
		return 6
	case Binary:
		return 7
	case ObjectID:
		return 8
	case bool:
		return 9
	case DateTime:
		return 10
	case Timestamp:
		return 11
	case Regex:
		return 12
	case MaxKey:
		return 14
	case Raw:
		if v.(Raw).T == 0x0E { // a symbol sorts as a string
			return 4
		}
		return 13
	}
	return 13
}

// number returns a numeric value as int64 (exact) or float64.
func number(v any) (i int64, f float64, isInt bool, ok bool) {
	switch x := v.(type) {
	case int32:
		return int64(x), float64(x), true, true
	case int64:
		return x, float64(x), true, true
	case int:
		return int64(x), float64(x), true, true
	case float64:
		return 0, x, false, true
	}
	return 0, 0, false, false
}

func compareNumbers(a, b any) int {
	ai, af, aInt, _ := number(a)
	bi, bf, bInt, _ := number(b)
	if aInt && bInt {
		return cmp3(ai < bi, ai > bi)
	}
	if math.IsNaN(af) || math.IsNaN(bf) {
		return cmp3(math.IsNaN(af) && !math.IsNaN(bf), !math.IsNaN(af) && math.IsNaN(bf))
	}
	return cmp3(af < bf, af > bf)
}

func cmp3(less, more bool) int {
	if less {
		return -1
	}
	if more {
		return 1
	}
	return 0
}

// compareValues orders two values as MongoDB sorts them.
func compareValues(a, b any) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmp3(ra < rb, ra > rb)
	}
	switch x := a.(type) {
	case nil, Undefined, MinKey, MaxKey:
		return 0
	case float64, int32, int64, int:
		if _, ok := b.(Decimal128); ok {
			return 0
		}
		return compareNumbers(a, b)
	case string:
		y, ok := b.(string)
		if !ok {
			return 0
		}
		return cmp3(x < y, x > y)
	case *Doc:
		return compareDocs(x, b.(*Doc))
	case Array:
		y := b.(Array)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := compareValues(x[i], y[i]); c != 0 {
				return c
			}
		}
		return cmp3(len(x) < len(y), len(x) > len(y))
	case Binary:
		y := b.(Binary)
		if len(x.Data) != len(y.Data) {
			return cmp3(len(x.Data) < len(y.Data), true)
		}
		if x.Sub != y.Sub {
			return cmp3(x.Sub < y.Sub, true)
		}
		return bytes.Compare(x.Data, y.Data)
	case ObjectID:
		y := b.(ObjectID)
		return bytes.Compare(x[:], y[:])
	case bool:
		y := b.(bool)
		return cmp3(!x && y, x && !y)
	case DateTime:
		y := b.(DateTime)
		return cmp3(x < y, x > y)
	case Timestamp:
		y := b.(Timestamp)
		return cmp3(x < y, x > y)
	case Regex:
		y := b.(Regex)
		if x.Pattern != y.Pattern {
			return cmp3(x.Pattern < y.Pattern, true)
		}
		return cmp3(x.Options < y.Options, x.Options > y.Options)
	case Decimal128:
		if y, ok := b.(Decimal128); ok {
			return bytes.Compare(x[:], y[:])
		}
		return 0
	case Raw:
		y := b.(Raw)
		return bytes.Compare(x.B, y.B)
	}
	return 0
}

func compareDocs(x, y *Doc) int {
	for i := 0; i < len(x.E) && i < len(y.E); i++ {
		ex, ey := x.E[i], y.E[i]
		if ra, rb := rank(ex.V), rank(ey.V); ra != rb {
			return cmp3(ra < rb, true)
		}
		if ex.K != ey.K {
			return cmp3(ex.K < ey.K, true)
		}
		if c := compareValues(ex.V, ey.V); c != 0 {
			return c
		}
	}
	return cmp3(len(x.E) < len(y.E), len(x.E) > len(y.E))
}

// equalValues: MongoDB's equality (1 == 1.0 == NumberLong(1)).
func equalValues(a, b any) bool {
	return rank(a) == rank(b) && compareValues(a, b) == 0
}

// valueKey is a string that equal values share, for hash maps.
func valueKey(v any) string {
	return string(appendKey(nil, v))
}

func appendKey(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil, Undefined:
		return append(dst, 'z')
	case string:
		dst = append(dst, 's')
		return append(dst, x...)
	case float64, int32, int64, int:
		i, f, isInt, _ := number(v)
		if !isInt && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			i, isInt = int64(f), true
		}
		if isInt {
			return binary.LittleEndian.AppendUint64(append(dst, 'i'), uint64(i))
		}
		return binary.LittleEndian.AppendUint64(append(dst, 'f'), math.Float64bits(f))
	case ObjectID:
		return append(append(dst, 'o'), x[:]...)
	case bool:
		if x {
			return append(dst, 't')
		}
		return append(dst, 'F')
	case DateTime:
		return binary.LittleEndian.AppendUint64(append(dst, 'd'), uint64(x))
	}
	dst = append(dst, 'x', byte(rank(v)))
	return appendElem(dst, "", v)
}
