package server

// Libraries Redis adds to its Lua: its own math.random and LuaBitOp's bit.

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// lrand48 is Redis's redisLrand48 (the 48-bit linear congruential
// generator of lrand48), so that math.random gives the same sequence as
// Redis after the same math.randomseed. The zero value is unseeded.
type lrand48 struct {
	x      uint64
	seeded bool
}

const lrand48Max = 1<<31 - 1 // REDIS_LRAND48_MAX

func (r *lrand48) next() int32 {
	if !r.seeded {
		r.x, r.seeded = 0x1234ABCD330E, true
	}
	r.x = (0x5DEECE66D*r.x + 0xB) & (1<<48 - 1)
	return int32(r.x >> 17)
}

func (r *lrand48) seed(v int32) {
	r.x, r.seeded = uint64(uint32(v))<<16|0x330E, true
}

// luaRandom is Redis's math.random: Lua 5.1's, drawing from lrand48.
func (r *lrand48) luaRandom(L *lua.LState) int {
	f := float64(r.next()%lrand48Max) / lrand48Max
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(f))
	case 1:
		u := L.CheckInt(1)
		if u < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(math.Floor(f*float64(u)) + 1))
	case 2:
		l, u := L.CheckInt(1), L.CheckInt(2)
		if l > u {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(math.Floor(f*float64(u-l+1)) + float64(l)))
	default:
		L.RaiseError("wrong number of arguments")
	}
	return 1
}

func (r *lrand48) luaRandomSeed(L *lua.LState) int {
	r.seed(int32(L.CheckInt(1)))
	return 0
}

// openBit returns LuaBitOp's bit table (32-bit operations on Lua numbers).
func openBit(L *lua.LState) *lua.LTable {
	arg := func(L *lua.LState, n int) uint32 { return toBit(float64(L.CheckNumber(n))) }
	ret := func(L *lua.LState, v uint32) int {
		L.Push(lua.LNumber(int32(v)))
		return 1
	}
	fold := func(op func(a, b uint32) uint32) lua.LGFunction {
		return func(L *lua.LState) int {
			v := arg(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				v = op(v, arg(L, i))
			}
			return ret(L, v)
		}
	}
	t := L.NewTable()
	for name, fn := range map[string]lua.LGFunction{
		"tobit": func(L *lua.LState) int { return ret(L, arg(L, 1)) },
		"bnot":  func(L *lua.LState) int { return ret(L, ^arg(L, 1)) },
		"band":  fold(func(a, b uint32) uint32 { return a & b }),
		"bor":   fold(func(a, b uint32) uint32 { return a | b }),
		"bxor":  fold(func(a, b uint32) uint32 { return a ^ b }),
		"lshift": func(L *lua.LState) int {
			return ret(L, arg(L, 1)<<(arg(L, 2)&31))
		},
		"rshift": func(L *lua.LState) int {
			return ret(L, arg(L, 1)>>(arg(L, 2)&31))
		},
		"arshift": func(L *lua.LState) int {
			return ret(L, uint32(int32(arg(L, 1))>>(arg(L, 2)&31)))
		},
		"rol": func(L *lua.LState) int {
			v, n := arg(L, 1), arg(L, 2)&31
			return ret(L, v<<n|v>>((32-n)&31))
		},
		"ror": func(L *lua.LState) int {
			v, n := arg(L, 1), arg(L, 2)&31
			return ret(L, v>>n|v<<((32-n)&31))
		},
		"bswap": func(L *lua.LState) int {
			v := arg(L, 1)
			return ret(L, v>>24|v>>8&0xff00|v<<8&0xff0000|v<<24)
		},
		"tohex": func(L *lua.LState) int {
			v := arg(L, 1)
			n := int32(8)
			if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
				n = int32(arg(L, 2))
			}
			digits := "0123456789abcdef"
			if n < 0 {
				n, digits = -n, "0123456789ABCDEF"
			}
			if n > 8 {
				n = 8
			}
			var b strings.Builder
			for i := n - 1; i >= 0; i-- {
				b.WriteByte(digits[v>>(4*uint(i))&15])
			}
			L.Push(lua.LString(b.String()))
			return 1
		},
	} {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}

// toBit is LuaBitOp's number normalisation: round to nearest (ties to
// even) and keep the low 32 bits.
func toBit(f float64) uint32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return uint32(int64(math.RoundToEven(math.Mod(f, 1<<32))))
}

// luaMaxCStack is Lua 5.1's LUAI_MAXCSTACK: how many values a Go (C)
// function may push, so the bound of unpack.
const luaMaxCStack = 8000

// maxLuaString bounds strings string.rep builds (a Go allocation that
// fails ends the process, where C Lua would raise an error).
const maxLuaString = 512 << 20

// luaUnpack is unpack with Lua 5.1's limit on the number of results.
func luaUnpack(L *lua.LState) int {
	t := L.CheckTable(1)
	i := L.OptInt(2, 1)
	e := L.OptInt(3, t.Len())
	if i > e {
		return 0
	}
	n := e - i + 1
	if n <= 0 || n > luaMaxCStack {
		L.RaiseError("too many results to unpack")
	}
	for j := i; j <= e; j++ {
		L.Push(t.RawGetInt(j))
	}
	return n
}

// luaStringRep is string.rep, refusing results past maxLuaString.
func luaStringRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if len(s) > maxLuaString/n {
		L.RaiseError("resulting string too large")
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// luaFormat is Lua 5.1's string.format (gopher-lua hands the format to
// Go's fmt, whose %g, %q, %i and %u differ from C's).
func luaFormat(L *lua.LState) int {
	format := L.CheckString(1)
	arg := 1
	argErr := func(msg string) {
		L.RaiseError("bad argument #%d to 'format' (%s)", arg, msg)
	}
	number := func() float64 {
		switch v := L.Get(arg).(type) {
		case lua.LNumber:
			return float64(v)
		case lua.LString:
			if f, err := parseLuaNumber(string(v)); err == nil {
				return f
			}
		}
		argErr("number expected, got " + L.Get(arg).Type().String())
		return 0
	}
	str := func() string {
		switch v := L.Get(arg).(type) {
		case lua.LString:
			return string(v)
		case lua.LNumber:
			return luaNumberString(float64(v))
		}
		argErr("string expected, got " + L.Get(arg).Type().String())
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		i++
		if i >= len(format) {
			L.RaiseError("invalid option '%%' to 'format'")
		}
		if format[i] == '%' {
			b.WriteByte('%')
			continue
		}
		// Flags, width and precision, as C Lua bounds them.
		start := i
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			i++
		}
		if i-start > 5 {
			L.RaiseError("invalid format (repeated flags)")
		}
		flags := format[start:i]
		digits := func() string {
			d := i
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				i++
			}
			if i-d > 2 {
				L.RaiseError("invalid format (width or precision too long)")
			}
			return format[d:i]
		}
		width := digits()
		prec, hasPrec := "", false
		if i < len(format) && format[i] == '.' {
			i++
			prec, hasPrec = digits(), true
		}
		if i >= len(format) {
			L.RaiseError("invalid option '%%' to 'format'")
		}
		conv := format[i]
		arg++
		if arg > L.GetTop() && strings.IndexByte("diouxXceEfgGqs", conv) >= 0 {
			argErr("no value")
		}
		spec := "%" + flags + width
		if hasPrec {
			spec += "." + prec
		}
		switch conv {
		case 'd', 'i':
			b.WriteString(fmt.Sprintf(spec+"d", luaInteger(number())))
		case 'o', 'u', 'x', 'X':
			n := uint64(luaInteger(number()))
			verb := string(conv)
			if conv == 'u' {
				verb = "d"
			}
			b.WriteString(fmt.Sprintf(spec+verb, n))
		case 'c':
			b.WriteString(fmt.Sprintf("%"+flags+width+"s", string([]byte{byte(luaInteger(number()))})))
		case 'e', 'E', 'f', 'g', 'G':
			f := number()
			if math.IsInf(f, 0) || math.IsNaN(f) {
				s := luaNumberString(f)
				if s == "inf" && strings.Contains(flags, "+") {
					s = "+inf"
				}
				if conv == 'E' || conv == 'G' {
					s = strings.ToUpper(s)
				}
				b.WriteString(fmt.Sprintf("%"+strings.ReplaceAll(flags, "0", "")+width+"s", s))
				continue
			}
			if !hasPrec {
				spec += ".6"
			}
			b.WriteString(fmt.Sprintf(spec+string(conv), f))
		case 'q':
			luaQuote(&b, str())
		case 's':
			s := str()
			if hasPrec {
				p, _ := strconv.Atoi(prec)
				if p < len(s) {
					s = s[:p]
				}
			}
			b.WriteString(fmt.Sprintf("%"+flags+width+"s", s))
		default:
			L.RaiseError("invalid option '%%%c' to 'format'", conv)
		}
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// luaQuote is string.format's %q.
func luaQuote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case '\n':
			b.WriteString("\\\n")
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\000`)
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
}
