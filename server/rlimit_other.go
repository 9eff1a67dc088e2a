//go:build !unix

package server

// FileLimit is what FitOpenFiles found and did.
type FileLimit struct {
	// Was and Now are the soft open-file limit before and after.
	Was, Now uint64
	// MaxClients is the maxclients the limit allows.
	MaxClients int
}

// FitOpenFiles has nothing to fit on this platform: it allows maxclients.
func FitOpenFiles(maxclients int) (FileLimit, error) {
	return FileLimit{MaxClients: maxclients}, nil
}
