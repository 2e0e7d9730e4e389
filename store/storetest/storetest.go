package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"credbroker/store"
)

// Run runs the conformance tests; open returns a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"InsertGet", testInsertGet},
		{"UniqueIDAndHash", testUnique},
		{"SetStatus", testSetStatus},
		{"Touch", testTouch},
		{"Delete", testDelete},
		{"List", testList},
		{"Settings", testSettings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

func record(id string, created time.Time) store.Record {
	return store.Record{
		PublicID: id, Hash: "hash-" + id, Ciphertext: []byte{0, 1, 2, 0xff}, OwnerUID: 1000,
		Status: "pending", CreateTime: created, UpdateTime: created,
		ExpirationTime: created.Add(time.Hour), LastAccessTime: created,
		StaleAfter: 10 * time.Minute, Data: []byte(`{"a":1}`),
	}
}

func mustInsert(t *testing.T, s store.Store, r store.Record) {
	t.Helper()
	if err := s.Insert(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b store.Record) bool {
	return a.PublicID == b.PublicID && a.Hash == b.Hash && bytes.Equal(a.Ciphertext, b.Ciphertext) &&
		a.OwnerUID == b.OwnerUID && a.Status == b.Status && a.Reason == b.Reason &&
		a.CreateTime.Equal(b.CreateTime) && a.UpdateTime.Equal(b.UpdateTime) &&
		a.ExpirationTime.Equal(b.ExpirationTime) && a.LastAccessTime.Equal(b.LastAccessTime) &&
		a.StaleAfter == b.StaleAfter && bytes.Equal(a.Data, b.Data)
}

func testInsertGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := record("at_1", t0)
	mustInsert(t, s, r)
	for name, get := range map[string]func() (store.Record, error){
		"Get":       func() (store.Record, error) { return s.Get(ctx, "at_1") },
		"GetByHash": func() (store.Record, error) { return s.GetByHash(ctx, "hash-at_1") },
	} {
		got, err := get()
		if err != nil || !equal(got, r) {
			t.Errorf("%s = %+v, %v; want %+v", name, got, err, r)
		}
	}
	if _, err := s.Get(ctx, "at_2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a missing id: %v", err)
	}
	if _, err := s.GetByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetByHash of a missing hash: %v", err)
	}
}

func testUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustInsert(t, s, record("at_1", t0))
	dupID := record("at_1", t0)
	dupID.Hash = "other"
	if err := s.Insert(ctx, dupID); err == nil {
		t.Error("a second record with the same public id was accepted")
	}
	dupHash := record("at_2", t0)
	dupHash.Hash = "hash-at_1"
	if err := s.Insert(ctx, dupHash); err == nil {
		t.Error("a second record with the same hash was accepted")
	}
}

func testSetStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustInsert(t, s, record("at_1", t0))
	later := t0.Add(time.Minute)
	ok, err := s.SetStatus(ctx, "at_1", store.Transition{From: []string{"pending"}, To: "issued", Data: []byte("new"), Now: later})
	if !ok || err != nil {
		t.Fatalf("pending to issued: %v, %v", ok, err)
	}
	ok, err = s.SetStatus(ctx, "at_1", store.Transition{From: []string{"pending"}, To: "failed", Reason: "x", Now: later})
	if ok || err != nil {
		t.Errorf("a transition from the wrong status: %v, %v", ok, err)
	}
	ok, err = s.SetStatus(ctx, "at_1", store.Transition{From: []string{"pending", "issued"}, To: "failed", Reason: "gone", Now: later})
	if !ok || err != nil {
		t.Errorf("issued to failed: %v, %v", ok, err)
	}
	got, _ := s.Get(ctx, "at_1")
	if got.Status != "failed" || got.Reason != "gone" || string(got.Data) != "new" || !got.UpdateTime.Equal(later) {
		t.Errorf("after the transitions: %+v", got)
	}
	if ok, err := s.SetStatus(ctx, "at_9", store.Transition{From: []string{"pending"}, To: "issued"}); ok || err != nil {
		t.Errorf("a missing record: %v, %v", ok, err)
	}
}

func testTouch(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustInsert(t, s, record("at_1", t0))
	at := t0.Add(3 * time.Minute)
	if err := s.Touch(ctx, "at_1", at); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "at_1"); !got.LastAccessTime.Equal(at) {
		t.Errorf("last access %v, want %v", got.LastAccessTime, at)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustInsert(t, s, record("at_1", t0))
	if n, err := s.Delete(ctx, "at_1"); n != 1 || err != nil {
		t.Errorf("Delete = %d, %v", n, err)
	}
	if n, err := s.Delete(ctx, "at_1"); n != 0 || err != nil {
		t.Errorf("second Delete = %d, %v", n, err)
	}
	if _, err := s.GetByHash(ctx, "hash-at_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted record still found by hash: %v", err)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	statuses := []string{"issued", "pending", "issued", "failed"}
	for i, st := range statuses {
		r := record(fmt.Sprintf("at_%d", i), t0.Add(time.Duration(i)*time.Second))
		r.Status = st
		r.OwnerUID = int64(1000 + i%2)
		mustInsert(t, s, r)
	}
	owner := int64(1000)
	tests := []struct {
		name string
		f    store.Filter
		want []string
	}{
		{"all, oldest first", store.Filter{}, []string{"at_0", "at_1", "at_2", "at_3"}},
		{"status", store.Filter{Statuses: []string{"issued"}}, []string{"at_0", "at_2"}},
		{"statuses", store.Filter{Statuses: []string{"failed", "pending"}}, []string{"at_1", "at_3"}},
		{"owner", store.Filter{OwnerUID: &owner}, []string{"at_0", "at_2"}},
		{"limit", store.Filter{Limit: 3}, []string{"at_0", "at_1", "at_2"}},
		{"filter and limit", store.Filter{Statuses: []string{"issued", "failed"}, Limit: 2}, []string{"at_0", "at_2"}},
		{"nothing", store.Filter{Statuses: []string{"system error"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.PublicID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Setting(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing setting: %v", err)
	}
	for _, v := range []string{"1", "2"} {
		if err := s.PutSetting(ctx, "k", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Setting(ctx, "k"); err != nil || string(got) != v {
			t.Errorf("setting = %q, %v; want %q", got, err, v)
		}
	}
}
