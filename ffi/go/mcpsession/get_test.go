package mcpsession

import (
	"testing"
)

// TestGetAllocationFree: a successful Get, a Get of an unknown id and a
// Get of a malformed one allocate nothing (the hot path of every request).
func TestGetAllocationFree(t *testing.T) {
	r := newReg[*tracked](t, DefaultConfig())
	v := &tracked{1}
	id := mustCreate(t, r, v, nil)
	bound := mustCreate(t, r, v, []byte("alice"))
	alice := []byte("alice")
	cases := map[string]func(){
		"found": func() {
			if got, err := r.Get(id, nil); err != nil || got != v {
				t.Fatalf("Get = %v, %v", got, err)
			}
		},
		"found with principal": func() {
			if _, err := r.Get(bound, alice); err != nil {
				t.Fatal(err)
			}
		},
		"not found": func() {
			if _, err := r.Get(unknownID, nil); err != ErrNotFound {
				t.Fatal(err)
			}
		},
		"malformed": func() {
			if _, err := r.Get("nope", nil); err != ErrMalformedID {
				t.Fatal(err)
			}
		},
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("Get (%s): %v allocations per call, want 0", name, n)
		}
	}
}

// BenchmarkGet measures a successful Get from parallel goroutines (run it
// with -cpu 1,2 to see the cost of sharing the registry's read lock).
func BenchmarkGet(b *testing.B) {
	r, err := New[int](DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ids := make([]string, 1024)
	for i := range ids {
		if ids[i], err = r.Create(i, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Get(ids[i&1023], nil); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
