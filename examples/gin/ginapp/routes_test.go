package ginapp_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sessionfence/sessionfence/examples/gin/ginapp"
	"github.com/sessionfence/sessionfence/examples/internal/apptest"
)

func TestEndToEnd(t *testing.T) {
	gin.SetMode(gin.TestMode)
	apptest.Run(t, "gin", ginapp.Handler)
}
