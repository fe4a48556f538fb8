package mcpsession

import "sync"

// valueShards is how many independently locked parts the value table has:
// concurrent lookups of different sessions rarely share a lock's cache line.
const valueShards = 64

// valueShard is one part of the table, padded to its own cache lines.
type valueShard[T any] struct {
	mu sync.RWMutex
	m  map[uint64]*entry[T]
	_  [64]byte
}

// valueTable maps the tags given to the C library to the Go values. Unlike
// runtime/cgo.Handle (whose Value() boxes the handle into an interface for
// a sync.Map and allocates), a lookup here is allocation-free. Each tag is
// removed exactly once: whoever's take returns ok owns the entry.
type valueTable[T any] struct {
	shards [valueShards]valueShard[T]
}

func (t *valueTable[T]) shard(tag uint64) *valueShard[T] {
	return &t.shards[tag%valueShards]
}

// put records e under tag.
func (t *valueTable[T]) put(tag uint64, e *entry[T]) {
	s := t.shard(tag)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]*entry[T])
	}
	s.m[tag] = e
	s.mu.Unlock()
}

// get returns the entry of tag, if it was not taken yet.
func (t *valueTable[T]) get(tag uint64) (*entry[T], bool) {
	s := t.shard(tag)
	s.mu.RLock()
	e, ok := s.m[tag]
	s.mu.RUnlock()
	return e, ok
}

// take removes and returns the entry of tag; ok is false if it was already
// taken.
func (t *valueTable[T]) take(tag uint64) (*entry[T], bool) {
	s := t.shard(tag)
	s.mu.Lock()
	e, ok := s.m[tag]
	if ok {
		delete(s.m, tag)
	}
	s.mu.Unlock()
	return e, ok
}

// len returns how many entries are held.
func (t *valueTable[T]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// takeAll removes and returns every entry.
func (t *valueTable[T]) takeAll() []*entry[T] {
	var out []*entry[T]
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for tag, e := range s.m {
			out = append(out, e)
			delete(s.m, tag)
		}
		s.mu.Unlock()
	}
	return out
}
