package session

import (
	"slices"
	"strings"
)

// Env is a process environment as a list of KEY=VALUE strings, edited in
// place so that the order of untouched variables is kept.
type Env []string

// Get returns the value of key and whether it is set.
func (e Env) Get(key string) (string, bool) {
	for _, kv := range e {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// Set sets key to value, replacing every earlier definition.
func (e *Env) Set(key, value string) {
	e.Unset(key)
	*e = append(*e, key+"="+value)
}

// Unset removes every definition of key.
func (e *Env) Unset(key string) {
	*e = slices.DeleteFunc(*e, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == key
	})
}
