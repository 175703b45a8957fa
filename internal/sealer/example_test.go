package sealer_test

import (
	"errors"
	"fmt"

	"github.com/sessionfence/sessionfence/internal/sealer"
)

func Example() {
	key := make([]byte, sealer.KeySize) // use random keys: middleware.GenerateKey
	s, err := sealer.New("session", [][]byte{key})
	if err != nil {
		panic(err)
	}
	value := s.Seal([]byte("hello"))
	pt, err := s.Open(value, nil)
	fmt.Println(string(pt), err, len(value) == sealer.SealedLen(len("hello")))

	// A value sealed for another purpose never opens as this one.
	other, _ := sealer.New("login-state", [][]byte{key})
	_, err = s.Open(other.Seal([]byte("hello")), nil)
	fmt.Println(errors.Is(err, sealer.ErrUnknownKey))
	// Output:
	// hello <nil> true
	// true
}
