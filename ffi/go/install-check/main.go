// Command install-check uses the mcpsession module the way a user's program
// does (an import, no path into a checkout); ffi/go/test.sh builds it
// against a copy of the module in a temporary directory and runs it.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcp-session-core/mcp-session-core/ffi/go/mcpsession"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "install-check:", err)
		os.Exit(1)
	}
}

func run() error {
	reg, err := mcpsession.New[string](mcpsession.DefaultConfig())
	if err != nil {
		return err
	}
	defer reg.Close()
	id, err := reg.Create("transport", []byte("alice"))
	if err != nil {
		return err
	}
	if v, err := reg.Get(id, []byte("alice")); err != nil || v != "transport" {
		return fmt.Errorf("Get = %q, %v", v, err)
	}
	if _, err := reg.Get(id, []byte("mallory")); !errors.Is(err, mcpsession.ErrNotFound) {
		return fmt.Errorf("Get by another principal: %v", err)
	}
	if _, err := reg.CloseSession(id); err != nil {
		return err
	}
	evs := reg.DrainClosed()
	if len(evs) != 1 || evs[0].Reason != mcpsession.ReasonClosed {
		return fmt.Errorf("DrainClosed = %+v", evs)
	}
	fmt.Printf("ok: mcp-session-core %s, session %s created, found and closed\n", mcpsession.Version(), id)
	return nil
}
