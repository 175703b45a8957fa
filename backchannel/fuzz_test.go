package backchannel

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/internal/fakeidp"
)

// FuzzHandler feeds arbitrary content types and bodies to the handler. It
// must never panic, never answer 5xx (the provider and the store are up,
// so every outcome is 200 or 400), always send Cache-Control: no-store,
// and always give a JSON error body with a 400. Seeds live in
// testdata/fuzz/FuzzHandler; the ones added here carry tokens that are
// valid at fuzzing time.
func FuzzHandler(f *testing.F) {
	clk := newClock()
	p := fakeidp.New(f, fakeidp.WithClock(clk.Now))
	e := newEnv(f, clk, []*fakeidp.Provider{p}, nil)
	const ct = "application/x-www-form-urlencoded"
	valid := p.SignLogoutToken(p.LogoutToken(clientID, sub, sid))
	f.Add(ct, url.Values{"logout_token": {valid}}.Encode())
	f.Add(ct, url.Values{"logout_token": {p.SignLogoutToken(p.LogoutToken(clientID, sub, ""))}, "x": {"y"}}.Encode())
	f.Add(ct, url.Values{"logout_token": {p.Unsigned(p.LogoutToken(clientID, sub, sid))}}.Encode())
	f.Add(ct+"; charset=utf-8", "logout_token="+valid+"&logout_token="+valid)
	f.Add("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"logout_token\"\r\n\r\n"+valid+"\r\n--x--")
	parts := strings.Split(valid, ".")
	f.Add(ct, "logout_token="+parts[0]+"."+parts[1]+".")
	f.Add(ct, "logout_token="+parts[0]+".."+parts[2])

	f.Fuzz(func(t *testing.T, contentType, body string) {
		req := httptest.NewRequest(http.MethodPost, "/backchannel", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		e.rcv.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			var b errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != "invalid_request" || b.Description == "" {
				t.Fatalf("400 body %q", w.Body)
			}
		default:
			t.Fatalf("status %d for %q %q: %s", w.Code, contentType, body, w.Body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("no Cache-Control")
		}
	})
}
