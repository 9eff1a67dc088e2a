package server

// Libraries Redis adds to its Lua: its own math.random and LuaBitOp's bit.

import (
	"math"
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
