package ginadapter_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/sessionfence/sessionfence/adapters/gin"
)

func TestBackchannelHandlerWritesTheReceiversAnswerAndAborts(t *testing.T) {
	gin.SetMode(gin.TestMode)
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") != "tok" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	reached := false
	r := gin.New()
	r.Any("/bc", ginadapter.BackchannelHandler(receiver), func(c *gin.Context) {
		reached = true
		c.String(http.StatusTeapot, "later handler")
	})
	for _, tc := range []struct {
		method, body string
		status       int
	}{
		{http.MethodPost, "logout_token=tok", http.StatusOK},
		{http.MethodPost, "logout_token=bad", http.StatusBadRequest},
		{http.MethodGet, "", http.StatusMethodNotAllowed},
	} {
		reached = false
		req := httptest.NewRequest(tc.method, "/bc", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tc.status || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %q: %d %v", tc.method, tc.body, w.Code, w.Header())
		}
		if reached || strings.Contains(w.Body.String(), "later handler") {
			t.Errorf("%s %q: the chain was not aborted", tc.method, tc.body)
		}
	}
}
