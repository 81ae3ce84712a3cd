package gateway

// SetFirstPublicationPart sets how many Ingresses one part of the first configuration evaluates,
// for a test; the returned function restores it.
func SetFirstPublicationPart(n int) (restore func()) {
	old := firstPublicationPart
	firstPublicationPart = n
	return func() { firstPublicationPart = old }
}
