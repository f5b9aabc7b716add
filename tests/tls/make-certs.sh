#!/bin/sh
# Makes a throw-away PKI for the TLS specifications in directory $1 (created
# if missing), with the openssl command only:
#   ca.pem                  the test CA (self-signed)
#   server.{pem,key}        a server certificate of that CA
#   client.{pem,key}        a client certificate of that CA
#   stranger.{pem,key}      a certificate of another CA (other-ca.pem)
#   expired.{pem,key}       a certificate of the test CA, valid in 2020 only
# EC keys (P-256): quick to make. Prints "make-certs: ok" at the end.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
days=2
newkey="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
subject() { echo "/O=ctxstore-test/CN=$1"; }

# Two CAs.
for ca in ca other-ca; do
  openssl req -x509 $newkey -keyout "$ca.key" -out "$ca.pem" -days $days \
    -subj "$(subject "$ca")" 2>/dev/null
done

# Peer certificates: name, signing CA.
issue() {
  openssl req $newkey -keyout "$1.key" -out "$1.csr" \
    -subj "$(subject "$1")" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -CAcreateserial -out "$1.pem" -days $days 2>/dev/null
}
issue server ca
issue client ca
issue stranger other-ca

# An expired certificate: `openssl x509 -days` cannot go back in time
# (OpenSSL 3.0), `openssl ca` takes explicit dates.
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
[any]
commonName = supplied
CNF
openssl req $newkey -keyout expired.key -out expired.csr \
  -subj "$(subject expired)" 2>/dev/null
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key \
  -in expired.csr -out expired.pem -notext \
  -startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
echo "make-certs: ok"
