// The lab logging role's logspout, built from its Go module (tools/logspout.go names it). The Go
// module proxy our machines reach serves gliderlabs/logspout only at v3.2.1 and v3.2.6, not the
// product's v3.2.14: v3.2.6 has what the program relies on (HTTP_BIND_ADDRESS, /health, the
// syslog adapter's /etc/host_hostname). Its own dependencies were vendored with glide; these are
// the versions Go's resolution picks from the proxy.
module wordpress-swarm.invalid/tools/logspout

go 1.26.0

require github.com/gliderlabs/logspout v3.2.6+incompatible

require (
	github.com/Azure/go-ansiterm v0.0.0-20250102033503-faa5f7b0171c // indirect
	github.com/Microsoft/go-winio v0.6.2 // indirect
	github.com/containerd/log v0.1.0 // indirect
	github.com/docker/go-units v0.5.0 // indirect
	github.com/fsouza/go-dockerclient v1.13.3 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/klauspost/compress v1.18.7 // indirect
	github.com/moby/go-archive v0.3.3 // indirect
	github.com/moby/moby/api v1.55.0 // indirect
	github.com/moby/moby/client v0.5.1 // indirect
	github.com/moby/patternmatcher v0.6.1 // indirect
	github.com/moby/sys/sequential v0.7.0 // indirect
	github.com/moby/sys/user v0.4.1 // indirect
	github.com/moby/sys/userns v0.1.0 // indirect
	github.com/moby/term v0.5.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	github.com/sirupsen/logrus v1.9.4 // indirect
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
