module github.com/sessionfence/sessionfence/bench

go 1.26.8

replace github.com/sessionfence/sessionfence => ../

require (
	github.com/alexedwards/scs/redisstore v0.0.0-20251002162104-209de6e426de
	github.com/alexedwards/scs/v2 v2.9.0
	github.com/gomodule/redigo v1.8.0
	github.com/sessionfence/sessionfence v0.0.0-00010101000000-000000000000
	github.com/valkey-io/valkey-go v1.0.79
)

require golang.org/x/sys v0.48.0 // indirect
