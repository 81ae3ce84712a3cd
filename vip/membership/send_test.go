package membership

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestSendDeliversToTheNamedMember(t *testing.T) {
	var net memberlist.MockNetwork
	var mu sync.Mutex
	const secret = "a-long-enough-test-secret"
	a, aAddr := startMock(t, &net, &mu, "a", secret, "", nil, Meta{Fit: true})
	b, _ := startMock(t, &net, &mu, "b", secret, "", []string{aAddr}, Meta{Fit: true})
	waitView(t, a, "b joined", func(ms []Member) bool { return slices.Equal(names(ms), []string{"a", "b"}) })
	if err := a.m.Send("b", []byte("reannounce 198.18.0.200")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-b.m.Messages():
		if string(got) != "reannounce 198.18.0.200" {
			t.Errorf("b got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b got nothing")
	}
	if err := a.m.Send("nobody", []byte("x")); err == nil {
		t.Error("Send to an unknown member: no error")
	}
	select {
	case got := <-a.m.Messages():
		t.Errorf("the sender got its own message %q", got)
	default:
	}
}
