package server

import "github.com/sessiond/sessiond/ttl"

// Value kinds stored in the ttl.Store. The store keeps the tag; only this
// package gives it a meaning.
const (
	kindString ttl.Kind = iota + 1
	kindHash
	kindSet
	kindZSet
	kindList
)

// typeName is what TYPE answers for a kind.
func typeName(k ttl.Kind) string {
	switch k {
	case kindString:
		return "string"
	case kindHash:
		return "hash"
	case kindSet:
		return "set"
	case kindZSet:
		return "zset"
	case kindList:
		return "list"
	}
	return "none"
}
