// Update documents: operators ($set, $inc, ...) or a replacement.
package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func isOperatorUpdate(u *Doc) bool {
	return len(u.E) > 0 && strings.HasPrefix(u.E[0].K, "$")
}

// applyUpdate returns the updated copy of d (d is not changed).
// inserting: an upsert's new document ($setOnInsert applies).
func applyUpdate(d *Doc, u *Doc, inserting bool) (*Doc, error) {
	if !isOperatorUpdate(u) {
		out := &Doc{}
		if id, ok := d.Get("_id"); ok {
			out.E = append(out.E, Elem{"_id", id})
		}
		for _, e := range u.E {
			if strings.HasPrefix(e.K, "$") {
				return nil, badValue("the update operator %s is mixed with fields", e.K)
			}
			if e.K != "_id" || len(out.E) == 0 {
				out.E = append(out.E, Elem{e.K, cloneValue(e.V)})
			}
		}
		return out, nil
	}
	out := d.Clone()
	for _, op := range u.E {
		args, ok := op.V.(*Doc)
		if !ok {
			return nil, cmdErr(9, "FailedToParse", "Modifiers operate on fields but we found "+
				"another type instead: "+op.K)
		}
		if op.K == "$setOnInsert" && !inserting {
			continue
		}
		for _, a := range args.E {
			path := splitPath(a.K)
			if err := applyOp(out, op.K, path, a.V); err != nil {
				return nil, err
			}
		}
	}
	out.raw = nil
	return out, nil
}

func applyOp(d *Doc, op string, path []string, arg any) error {
	cur, exists := getPath(d, path)
	switch op {
	case "$set", "$setOnInsert":
		return setPath(d, path, cloneValue(arg))
	case "$unset":
		unsetPath(d, path)
		return nil
	case "$inc", "$mul":
		if _, _, _, ok := number(arg); !ok {
			return cmdErr(14, "TypeMismatch", "Cannot "+op[1:]+" with non-numeric argument")
		}
		if !exists {
			if op == "$mul" {
				arg = mulNumbers(arg, int32(0))
			}
			return setPath(d, path, arg)
		}
		if _, _, _, ok := number(cur); !ok {
			return cmdErr(14, "TypeMismatch", fmt.Sprintf(
				"Cannot apply %s to a value of non-numeric type. {_id: %s} has the field '%s' of "+
					"non-numeric type %T", op, fmtValue(getOr(d, "_id")), path[len(path)-1], cur))
		}
		if op == "$inc" {
			return setPath(d, path, addNumbers(cur, arg))
		}
		return setPath(d, path, mulNumbers(cur, arg))
	case "$max", "$min":
		if !exists {
			return setPath(d, path, cloneValue(arg))
		}
		c := compareValues(arg, cur)
		if (op == "$max" && c > 0) || (op == "$min" && c < 0) {
			return setPath(d, path, cloneValue(arg))
		}
		return nil
	case "$currentDate":
		now := time.Now()
		var v any = DateTime(now.UnixMilli())
		if spec, ok := arg.(*Doc); ok && getOr(spec, "$type") == "timestamp" {
			v = Timestamp(uint64(now.Unix()) << 32)
		}
		return setPath(d, path, v)
	case "$rename":
		to, ok := arg.(string)
		if !ok {
			return badValue("$rename needs a string")
		}
		if !exists {
			return nil
		}
		unsetPath(d, path)
		return setPath(d, splitPath(to), cur)
	case "$push", "$addToSet":
		var arr Array
		if exists {
			a, ok := cur.(Array)
			if !ok {
				return cmdErr(2, "BadValue", "The field '"+strings.Join(path, ".")+
					"' must be an array")
			}
			arr = append(Array{}, a...)
		}
		items := Array{arg}
		if spec, ok := arg.(*Doc); ok {
			if each, ok := spec.Get("$each"); ok {
				items, _ = each.(Array)
			}
		}
		for _, it := range items {
			if op == "$addToSet" && (eqP{it}).test([]any{arr}) {
				continue
			}
			arr = append(arr, cloneValue(it))
		}
		return setPath(d, path, arr)
	case "$pop":
		a, ok := cur.(Array)
		if !exists || !ok || len(a) == 0 {
			return nil
		}
		if n, _, _, _ := number(arg); n < 0 {
			return setPath(d, path, append(Array{}, a[1:]...))
		}
		return setPath(d, path, append(Array{}, a[:len(a)-1]...))
	case "$pull":
		a, ok := cur.(Array)
		if !exists || !ok {
			return nil
		}
		keep, err := pullFilter(arg)
		if err != nil {
			return err
		}
		var out Array
		for _, el := range a {
			if !keep(el) {
				out = append(out, el)
			}
		}
		return setPath(d, path, out)
	}
	return badValue("Unknown modifier: %s. Expected a valid update modifier", op)
}

// pullFilter: whether $pull removes an element.
func pullFilter(arg any) (func(any) bool, error) {
	if od, ok := isOperatorDoc(arg); ok {
		preds, err := (&filter{}).compileField("x", od, false)
		if err != nil {
			return nil, err
		}
		return func(v any) bool { return andP(preds).test([]any{v}) }, nil
	}
	if sd, ok := arg.(*Doc); ok {
		m, err := (&filter{}).compileDoc(sd, false)
		if err != nil {
			return nil, err
		}
		return func(v any) bool {
			d, ok := v.(*Doc)
			return ok && m.match(d)
		}, nil
	}
	return func(v any) bool { return equalValues(v, arg) }, nil
}

func addNumbers(a, b any) any {
	ai, af, aInt, _ := number(a)
	bi, bf, bInt, _ := number(b)
	if !aInt || !bInt {
		return af + bf
	}
	s := ai + bi
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && s >= math.MinInt32 && s <= math.MaxInt32 {
		return int32(s)
	}
	return s
}

func mulNumbers(a, b any) any {
	ai, af, aInt, _ := number(a)
	bi, bf, bInt, _ := number(b)
	if !aInt || !bInt {
		return af * bf
	}
	p := ai * bi
	_, a32 := a.(int32)
	_, b32 := b.(int32)
	if a32 && b32 && p >= math.MinInt32 && p <= math.MaxInt32 {
		return int32(p)
	}
	return p
}

// setPath sets a dotted path, making the documents on the way.
func setPath(d *Doc, path []string, v any) error {
	d.raw = nil
	if len(path) == 1 {
		d.Set(path[0], v)
		return nil
	}
	next, _ := d.Get(path[0])
	switch x := next.(type) {
	case *Doc:
		return setPath(x, path[1:], v)
	case Array:
		i, err := strconv.Atoi(path[1])
		if err != nil || i < 0 {
			return cmdErr(28, "PathNotViable", "Cannot create field '"+path[1]+"' in an array")
		}
		for len(x) <= i {
			x = append(x, nil)
		}
		d.Set(path[0], x)
		if len(path) == 2 {
			x[i] = v
			return nil
		}
		sub, isDoc := x[i].(*Doc)
		if !isDoc {
			if x[i] != nil {
				return cmdErr(28, "PathNotViable", "Cannot create field '"+path[2]+"'")
			}
			sub = &Doc{}
			x[i] = sub
		}
		return setPath(sub, path[2:], v)
	case nil: // missing or null: a document is made
		sub := &Doc{}
		d.Set(path[0], sub)
		return setPath(sub, path[1:], v)
	}
	return cmdErr(28, "PathNotViable", fmt.Sprintf(
		"Cannot create field '%s' in element {%s: %s}", path[1], path[0], fmtValue(next)))
}

func unsetPath(d *Doc, path []string) {
	d.raw = nil
	if len(path) == 1 {
		d.Delete(path[0])
		return
	}
	next, _ := d.Get(path[0])
	switch x := next.(type) {
	case *Doc:
		unsetPath(x, path[1:])
	case Array:
		if i, err := strconv.Atoi(path[1]); err == nil && i >= 0 && i < len(x) {
			if len(path) == 2 {
				x[i] = nil
			} else if sub, ok := x[i].(*Doc); ok {
				unsetPath(sub, path[2:])
			}
		}
	}
}

// upsertDoc: the document an upsert inserts: the filter's equalities,
// then the update.
func upsertDoc(q *Doc, u *Doc) (*Doc, error) {
	base := &Doc{}
	if isOperatorUpdate(u) {
		if err := addEqualities(base, q); err != nil {
			return nil, err
		}
	} else if id, ok := q.Get("_id"); ok {
		if _, isOp := isOperatorDoc(id); !isOp {
			base.E = append(base.E, Elem{"_id", id})
		}
	}
	d, err := applyUpdate(base, u, true)
	if err != nil {
		return nil, err
	}
	if _, ok := d.Get("_id"); !ok {
		d.E = append([]Elem{{"_id", newObjectID()}}, d.E...)
	} else if d.E[0].K != "_id" {
		id, _ := d.Get("_id")
		d.Delete("_id")
		d.E = append([]Elem{{"_id", id}}, d.E...)
	}
	d.raw = nil
	return d, nil
}

func addEqualities(base *Doc, q *Doc) error {
	if q == nil {
		return nil
	}
	for _, e := range q.E {
		if e.K == "$and" {
			arr, _ := e.V.(Array)
			for _, x := range arr {
				if sd, ok := x.(*Doc); ok {
					if err := addEqualities(base, sd); err != nil {
						return err
					}
				}
			}
			continue
		}
		if strings.HasPrefix(e.K, "$") {
			continue
		}
		v := e.V
		if od, isOp := isOperatorDoc(v); isOp {
			eq, ok := od.Get("$eq")
			if !ok {
				continue
			}
			v = eq
		}
		if _, isRe := v.(Regex); isRe {
			continue
		}
		if err := setPath(base, splitPath(e.K), cloneValue(v)); err != nil {
			return err
		}
	}
	return nil
}
