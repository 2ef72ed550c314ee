#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/seed-*: real client
# requests captured from git (clone, fetch, ls-remote; protocol v0, v1 and v2; shallow,
# filters) against the session target's fixture repositories, plus hand-written ssh command
# lines, git:// request lines and CGI requests. Run once by hand; the fuzzer grows the rest.
# Usage: fuzz/seeds.sh FIXTURE_ROOT   (the directory fuzz_entry::fixture_root() builds)
set -euo pipefail
cd "$(dirname "$0")"
fix=$1
c=corpus
mkdir -p $c/{pktline,v0_request,v2_request,filter,shell,daemon,http,session}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/up.sh" <<'UP'
#!/bin/sh
tee "$CAP" | git-upload-pack "$@"
UP
chmod +x "$tmp/up.sh"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
n=0
# capture NAME VERSION REPO GIT-ARGS...: one client run, its request bytes as seeds.
capture() {
	local name=$1 v=$2 repo=$3
	shift 3
	n=$((n + 1))
	local dir="$tmp/c$n"
	export CAP="$tmp/cap$n"
	: >"$CAP"
	(cd "$tmp" && "$@" >/dev/null 2>&1) || true
	[[ -s $CAP ]] || return 0
	local flags="v$v"
	[[ $repo == open ]] && flags="$flags open"
	{ printf '%s\n' "$flags"; cat "$CAP"; } >"$c/session/seed-$name-v$v"
	cp "$CAP" "$c/pktline/seed-$name-v$v"
	if [[ $v == 2 ]]; then cp "$CAP" "$c/v2_request/seed-$name"; else cp "$CAP" "$c/v0_request/seed-$name-v$v"; fi
}
for v in 0 1 2; do
	for repo in strict open; do
		url="file://$fix/$repo.git"
		g="git -c protocol.version=$v"
		capture "clone-$repo" $v $repo $g clone -q --upload-pack "$tmp/up.sh" "$url" "c$n-a"
		capture "lsremote-$repo" $v $repo $g ls-remote --upload-pack "$tmp/up.sh" "$url"
		capture "shallow-$repo" $v $repo $g clone -q --depth 2 --no-single-branch --upload-pack "$tmp/up.sh" "$url" "c$n-b"
		capture "since-$repo" $v $repo $g clone -q --shallow-since=1700004000 --upload-pack "$tmp/up.sh" "$url" "c$n-c"
		capture "exclude-$repo" $v $repo $g clone -q --shallow-exclude=v1 --upload-pack "$tmp/up.sh" "$url" "c$n-d"
	done
	url="file://$fix/open.git"
	g="git -c protocol.version=$v"
	for f in blob:none tree:0 blob:limit=100 object:type=commit sparse:oid=main:sparse combine:blob:none+tree:2; do
		capture "filter-${f//[:=+]/_}" $v open $g clone -q --filter=$f --no-checkout --upload-pack "$tmp/up.sh" "$url" "c$n-f"
	done
	# A fetch with haves: clone only `side`, then fetch `main`; and deepening a shallow clone.
	git clone -q --single-branch -b side "$url" "$tmp/side$v"
	capture fetch-haves $v open git -C "$tmp/side$v" -c protocol.version=$v fetch -q --upload-pack "$tmp/up.sh" origin main
	# (git 2.47 fails a v2 shallow clone from a server with uploadpack.allowRefInWant: strict.git.)
	git clone -q --depth 1 "file://$fix/strict.git" "$tmp/sh$v"
	capture deepen $v strict git -C "$tmp/sh$v" -c protocol.version=$v fetch -q --deepen=2 --upload-pack "$tmp/up.sh" origin
	capture unshallow $v strict git -C "$tmp/sh$v" -c protocol.version=$v fetch -q --unshallow --upload-pack "$tmp/up.sh" origin
	capture want-ref $v open git -C "$tmp/side$v" -c protocol.version=$v fetch -q --upload-pack "$tmp/up.sh" origin refs/tags/v1
done
# Stateless (smart HTTP) forms: the same requests, one round each.
# v2: each command request of a capture on its own (smart HTTP sends one per POST); v0: the
# whole request is what the last POST of a negotiation carries.
python3 - "$c/session" <<'PY'
import glob, sys
for path in glob.glob(sys.argv[1] + "/seed-*-v[02]"):
    head, data = open(path, "rb").read().split(b"\n", 1)
    if head.startswith(b"v0"):
        open(path + "-stateless", "wb").write(head + b" stateless\n" + data)
        continue
    reqs, i, start = [], 0, 0
    while i + 4 <= len(data):
        n = int(data[i:i + 4], 16)
        i += 4 if n < 4 else n
        if n == 0:
            reqs.append(data[start:i])
            start = i
    for k, r in enumerate(reqs):
        if b"command=fetch" in r[:24] or k == 0:
            open(f"{path}-stateless{k}", "wb").write(head + b" stateless\n" + r)
PY
printf 'v0 stateless advertise\n' >$c/session/seed-advertise-v0
printf 'v2 advertise trace\n' >$c/session/seed-advertise-v2

# Filter specs (before NUL) and sparse patterns (after).
i=0
for f in blob:none blob:limit=1k blob:limit=0x10 tree:0 tree:3 object:type=blob object:type=tag \
	sparse:oid=main:sparse sparse:path=x 'combine:blob:none+tree:2' 'combine:tree%3A1+object%3Atype%3Dtree' \
	'combine:sparse%3Aoid%3D1234+blob%3Alimit%3D5'; do
	i=$((i + 1))
	printf '%s\0d/\n!d/e/\n/a.txt\n*.c\n**/x/\n# comment\n\\!x\n' "$f" >"$c/filter/seed-$i"
done
# ssh forced commands (SSH_ORIGINAL_COMMAND).
i=0
for s in "git-upload-pack 'repo.git'" "git upload-pack '/srv/git/team/a.git'" "git-upload-pack '~/x'" \
	"git-upload-pack ~/'repo.git'" "git-upload-pack ~alice/'r'" "git-upload-pack 'a'\\''b'\\!''" \
	"git-receive-pack 'x'" "git-upload-archive 'x'" "git-upload-pack '-x'" "git-upload-pack '../etc'" \
	"  git	upload-pack	'team/sub/b.git'  "; do
	i=$((i + 1))
	printf '%s' "$s" >"$c/shell/seed-$i"
done
# git:// request lines (pkt-line framed).
pkt() { printf '%04x%s' $((${#1} + 4)) "$1"; }
i=0
while IFS= read -r s; do
	i=$((i + 1))
	body=$(printf "$s" | wc -c)
	{ printf '%04x' $((body + 4)); printf "$s"; printf '0000'; } >"$c/daemon/seed-$i"
done <<'LINES'
git-upload-pack /repo.git\0host=example.com\0
git-upload-pack /repo.git\0host=h:9418\0\0version=2\0
git-upload-pack ~alice/r\0
git-receive-pack /x\0host=h\0
git-upload-pack /a/../b\n
git-upload-pack /x\0\0version=1\0foo=bar\0
LINES
# CGI requests: variables, empty line, body.
cgi() { printf 'REQUEST_METHOD=%s\nPATH_INFO=%s\nQUERY_STRING=%s\nGIT_PROJECT_ROOT=/srv/git\nSERVER_PROTOCOL=HTTP/1.1\nCONTENT_TYPE=application/x-git-upload-pack-request\n%s\n' "$@"; }
cgi GET /a.git/info/refs service=git-upload-pack '' >$c/http/seed-advertise
cgi GET /a.git/info/refs 'x=1&service=git%2Dupload-pack' 'GIT_PROTOCOL=version=2' >$c/http/seed-advertise-v2
cgi GET /a.git/info/refs service=git-receive-pack '' >$c/http/seed-push
cgi GET /a.git/objects/info/packs '' '' >$c/http/seed-dumb
{ cgi POST /a.git/git-upload-pack '' 'GIT_PROTOCOL=version=2'; cat $c/v2_request/seed-clone-open; } >$c/http/seed-post-v2
{ cgi POST /a.git/git-upload-pack '' "CONTENT_LENGTH=$(wc -c <$c/v0_request/seed-clone-open-v0)"; cat $c/v0_request/seed-clone-open-v0; } >$c/http/seed-post-v0-length
{ cgi POST /a.git/git-upload-pack '' 'HTTP_CONTENT_ENCODING=gzip'; gzip -c <$c/v2_request/seed-fetch-haves; } >$c/http/seed-post-gzip
{ cgi POST /t/a/git-upload-pack '' 'PATH_TRANSLATED=/var/www/t/a/git-upload-pack' | grep -v GIT_PROJECT_ROOT; echo; printf '0000'; } >$c/http/seed-translated
echo "seeds written under $(pwd)/$c"
