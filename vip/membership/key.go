package membership

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/memberlist"
)

// ErrKeyring reports a keyring file that cannot be used.
var ErrKeyring = errors.New("invalid keyring")

// DeriveKey turns a configured secret of any length into memberlist's 32-byte AES-256 key: sha256(secret). This is
// the derivation MetalLB uses since v0.16.2 (before that it appended a constant to the secret, which left short
// secrets in the clear in the key), so edgegate and current MetalLB speakers derive the same key from one secret.
func DeriveKey(secret string) []byte {
	k := sha256.Sum256([]byte(secret))
	return k[:]
}

// ReadKeyringFile reads a serf-style keyring file: a JSON array of base64 keys of 16, 24 or 32 bytes, the first
// being the primary (used to encrypt) and all of them accepted to decrypt.
//
// Rotation without a partition, one step at a time on every node (reload between steps):
//  1. install: append the new key (old key stays first);
//  2. use: move the new key first;
//  3. remove: delete the old key.
func ReadKeyringFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", path, err)
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("keyring %s: %w: want a JSON array of base64 keys: %v", path, ErrKeyring, err)
	}
	if len(enc) == 0 {
		return nil, fmt.Errorf("keyring %s: %w: no keys", path, ErrKeyring)
	}
	keys := make([][]byte, 0, len(enc))
	for i, e := range enc {
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: key %d: %w: %v", path, i, ErrKeyring, err)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("keyring %s: key %d: %w: %v", path, i, ErrKeyring, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ApplyKeys makes kr hold exactly keys, keys[0] primary, in the order install → use → remove so that no moment
// exists in which a message encrypted with the old or the new primary cannot be decrypted.
func ApplyKeys(kr *memberlist.Keyring, keys [][]byte) error {
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("install key: %w", err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("use key: %w", err)
	}
	for _, old := range kr.GetKeys() {
		keep := false
		for _, k := range keys {
			if string(k) == string(old) {
				keep = true
				break
			}
		}
		if !keep {
			if err := kr.RemoveKey(old); err != nil {
				return fmt.Errorf("remove key: %w", err)
			}
		}
	}
	return nil
}
