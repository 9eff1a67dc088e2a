package redistest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Compare compares two raw replies to the step as its modifiers say (Scan
// and Skip compare nothing here). It returns nil when they agree, otherwise
// an error that explains the difference when the raw bytes alone do not.
func (s *Step) Compare(a, b []byte) error {
	mode := s.Mode
	switch mode {
	case Skip, Scan:
		return nil
	case Exact:
		if bytes.Equal(a, b) {
			return nil
		}
		return errors.New("replies differ")
	case Approx:
		if bytes.Equal(a, b) {
			return nil
		}
		ra, err := ParseReply(a)
		if err != nil {
			return fmt.Errorf("a: %w", err)
		}
		rb, err := ParseReply(b)
		if err != nil {
			return fmt.Errorf("b: %w", err)
		}
		if approxEqual(&ra, &rb, s.Tolerance) {
			return nil
		}
		return fmt.Errorf("replies differ by more than %d", s.Tolerance)
	case Mask:
		return compareMasked(a, b, s.Mask)
	}
	var norm [2]string
	for i, raw := range [2][]byte{a, b} {
		rep, err := ParseReply(raw)
		if err != nil {
			return fmt.Errorf("%c: %w", 'a'+i, err)
		}
		switch mode {
		case Sort:
			norm[i] = string(sorted(&rep, false))
		case SortPairs:
			norm[i] = string(sorted(&rep, true))
		case Shape:
			norm[i] = shape(&rep)
		default:
			return fmt.Errorf("unknown mode %v", mode)
		}
	}
	if norm[0] == norm[1] {
		return nil
	}
	if mode == Shape {
		return fmt.Errorf("shapes differ: a %s, b %s", norm[0], norm[1])
	}
	return fmt.Errorf("replies differ after sorting:\n\ta: %q\n\tb: %q", norm[0], norm[1])
}

// sorted re-encodes an aggregate with its elements (or pairs of elements,
// for maps, attributes and when pairs is set) in byte order. Other replies
// are returned as they are.
func sorted(r *Reply, pairs bool) []byte {
	if !r.IsAggregate() || r.IsNull() {
		return r.Raw
	}
	unit := 1
	if pairs || r.Type == '%' {
		unit = 2
	}
	if len(r.Elems)%unit != 0 {
		return r.Raw
	}
	var items [][]byte
	for i := 0; i < len(r.Elems); i += unit {
		var item []byte
		for _, e := range r.Elems[i : i+unit] {
			item = append(item, e.Raw...)
		}
		items = append(items, item)
	}
	slices.SortFunc(items, bytes.Compare)
	var out []byte
	if r.Attr != nil {
		out = append(out, r.Attr.Raw...)
	}
	out = append(out, r.Type)
	out = append(out, r.Header...)
	out = append(out, '\r', '\n')
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

// shape describes a reply's type structure without its contents, e.g.
// "*2[$,$]" for TIME, ":" for CLIENT ID, "$-1" for a RESP2 null.
func shape(r *Reply) string {
	var sb strings.Builder
	writeShape(&sb, r)
	return sb.String()
}

func writeShape(sb *strings.Builder, r *Reply) {
	if r.Attr != nil {
		writeShape(sb, r.Attr)
	}
	sb.WriteByte(r.Type)
	if r.IsNull() {
		sb.WriteString(r.Header)
		return
	}
	switch r.Type {
	case '*', '%', '~', '>', '|':
		sb.WriteString(strconv.Itoa(len(r.Elems)))
		sb.WriteByte('[')
		for i := range r.Elems {
			if i > 0 {
				sb.WriteByte(',')
			}
			writeShape(sb, &r.Elems[i])
		}
		sb.WriteByte(']')
	}
}

// approxEqual reports whether a and b are equal except for integers and
// doubles differing by at most tol.
func approxEqual(a, b *Reply, tol int64) bool {
	if bytes.Equal(a.Raw, b.Raw) {
		return true
	}
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case ':':
		x, _ := strconv.ParseInt(a.Header, 10, 64)
		y, _ := strconv.ParseInt(b.Header, 10, 64)
		d := x - y
		return d <= tol && d >= -tol
	case ',':
		x, err1 := strconv.ParseFloat(a.Header, 64)
		y, err2 := strconv.ParseFloat(b.Header, 64)
		return err1 == nil && err2 == nil && math.Abs(x-y) <= float64(tol)
	case '*', '%', '~', '>':
		if a.Header != b.Header || len(a.Elems) != len(b.Elems) {
			return false
		}
		for i := range a.Elems {
			if !approxEqual(&a.Elems[i], &b.Elems[i], tol) {
				return false
			}
		}
		return true
	}
	return false
}

// compareMasked compares two aggregates element by element: the elements
// whose index is in mask by shape only, the others exactly. Anything else
// is compared exactly.
func compareMasked(a, b []byte, mask []int) error {
	if bytes.Equal(a, b) {
		return nil
	}
	ra, err := ParseReply(a)
	if err != nil {
		return fmt.Errorf("a: %w", err)
	}
	rb, err := ParseReply(b)
	if err != nil {
		return fmt.Errorf("b: %w", err)
	}
	if !ra.IsAggregate() || ra.IsNull() || ra.Type != rb.Type || ra.Header != rb.Header {
		return errors.New("replies differ")
	}
	if (ra.Attr == nil) != (rb.Attr == nil) || (ra.Attr != nil && !bytes.Equal(ra.Attr.Raw, rb.Attr.Raw)) {
		return errors.New("attributes differ")
	}
	for i := range ra.Elems {
		ea, eb := &ra.Elems[i], &rb.Elems[i]
		if slices.Contains(mask, i) {
			if sa, sb := shape(ea), shape(eb); sa != sb {
				return fmt.Errorf("element %d (masked) differs in shape: a %s, b %s", i, sa, sb)
			}
		} else if !bytes.Equal(ea.Raw, eb.Raw) {
			return fmt.Errorf("element %d differs: a %q, b %q", i, ea.Raw, eb.Raw)
		}
	}
	return nil
}
