#!/usr/bin/env bash
# The bookstore demo of django-entra-sso, offline, in one command:
#
#   ./example_project/demo.sh
#
# Creates a virtualenv (example_project/.run/venv) with the app and both demo
# sites, migrates their databases, seeds a local identity provider (the IdP, on
# 127.0.0.1:9000: OpenID Connect, and SAML 2.0 too) and the bookstore site (on
# localhost:8000) with two connectors to it, "bookstore" (OIDC, for
# @bookstore.example) and "bookstore-saml" (SAML, for @saml.bookstore.example),
# starts both, and waits. Ctrl-C stops both. Running it again reuses everything
# it made. SAML needs the xmlsec1 program (Debian/Ubuntu: apt-get install
# xmlsec1); without it the SAML connector is left out, with a notice.
# The bookstore's API (/api/books/) takes the IdP's access tokens for the
# audience http://localhost:8000/api/; example_project/call_api.py calls it as
# the application bookstore-daemon (client credentials), which demo.sh
# registers at the IdP (secret in $DEMO_RUN_DIR/clients/bookstore-daemon.secret).
#
#   ./example_project/demo.sh --add-client NAME --redirect-uri URL [--redirect-uri URL ...]
#                             [--post-logout-redirect-uri URL ...]
#
# Registers (or updates) a client NAME at the local IdP for a site of your own,
# in the IdP's data directory whether or not the demo is running; prints the
# issuer, client ID and secret and the "manage.py sso_connector add" line for
# your site, then exits. The secret is made once and kept in
# $DEMO_RUN_DIR/clients/NAME.secret (delete it for a new one). Without
# --post-logout-redirect-uri, what a site with the app's defaults sends is
# allowed: .../sso/logout/done/ beside each .../sso/callback/<slug>/, and the
# site's home page.
# The demo's own client and users are left alone.
#
# Knobs (environment variables):
#   DEMO_SITE_PORT=8000     the bookstore's port
#   DEMO_IDP_PORT=9000      the local IdP's port
#   DEMO_RUN_DIR=DIR        where venv, databases, keys and logs live
#                           (default example_project/.run, git-ignored)
#   DEMO_SKIP_INSTALL=1     no virtualenv, no pip: use $PYTHON (default python3)
#                           as it is, with the repository on PYTHONPATH
#   DEMO_LOCAL_IDP=0        do not start the local IdP (with a real Entra tenant)
#   DEMO_START_TIMEOUT=60   seconds to wait for each server to answer
#   PYTHON=python3          the interpreter that makes the virtualenv
#   IDP_SAML_SP_METADATA_URLS
#                           more SAML service providers the local IdP signs people
#                           in to, beside the bookstore: their metadata URLs (=
#                           entity IDs), separated by spaces
#   ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET, ENTRA_ISSUER or ENTRA_TENANT_ID,
#   ENTRA_DOMAIN            also configure a connector "entra" for a real
#                           Microsoft Entra ID tenant (see README.md). They may
#                           also be written in example_project/.env; variables
#                           already set in the environment win.
#   ENTRA_SAML_METADATA_URL, ENTRA_SAML_DOMAIN
#                           also configure a SAML connector "entra-saml" from an
#                           Entra Enterprise application's App Federation
#                           Metadata Url (see README.md, "... with SAML").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" # example_project/
ROOT="$(dirname "$HERE")"                            # the repository: the app

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
die() {
	printf 'demo.sh: %s\n' "$*" >&2
	exit 1
}

# -- arguments -------------------------------------------------------------------
ADD_CLIENT=""
ADD_REDIRECT_URIS=()
ADD_LOGOUT_URIS=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		# The help is the comment at the top of this file.
		sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	--add-client | --redirect-uri | --post-logout-redirect-uri)
		[[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see demo.sh --help)."
		case "$1" in
		--add-client) ADD_CLIENT="$2" ;;
		--redirect-uri) ADD_REDIRECT_URIS+=("$2") ;;
		*) ADD_LOGOUT_URIS+=("$2") ;;
		esac
		shift 2
		;;
	*) die "unknown argument $1 (see demo.sh --help)." ;;
	esac
done
# An absolute http(s) URL: scheme, host (or [IPv6]), optional port, path and query; no fragment.
is_http_url() {
	local re='^https?://([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?][^#[:space:]]*)?$'
	[[ "$1" =~ $re ]]
}
if [[ -n "$ADD_CLIENT" ]]; then
	[[ "$ADD_CLIENT" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] ||
		die "--add-client \"$ADD_CLIENT\": use letters, digits, '.', '_' and '-' (e.g. mysite)."
	[[ ${#ADD_REDIRECT_URIS[@]} -gt 0 ]] ||
		die "--add-client needs --redirect-uri URL (your site's callback, e.g. http://127.0.0.1:8001/sso/callback/$ADD_CLIENT/)."
	for uri in "${ADD_REDIRECT_URIS[@]}" ${ADD_LOGOUT_URIS[@]+"${ADD_LOGOUT_URIS[@]}"}; do
		is_http_url "$uri" ||
			die "\"$uri\" is not an absolute http(s) URL without a #fragment (e.g. http://127.0.0.1:8001/sso/callback/$ADD_CLIENT/)."
	done
elif [[ ${#ADD_REDIRECT_URIS[@]} -gt 0 || ${#ADD_LOGOUT_URIS[@]} -gt 0 ]]; then
	die "--redirect-uri and --post-logout-redirect-uri go with --add-client NAME."
fi

# -- settings ------------------------------------------------------------------
load_env_file() {
	local file="$1" line key value
	[[ -f "$file" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		line="${line%$'\r'}"
		[[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
		key="${BASH_REMATCH[2]}"
		value="${BASH_REMATCH[3]}"
		# Strip one pair of surrounding quotes; no other shell syntax is interpreted.
		if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
			value="${BASH_REMATCH[1]}"
		fi
		if [[ -z "${!key+set}" ]]; then
			export "$key=$value"
		fi
	done <"$file"
}
load_env_file "$HERE/.env"

RUN_DIR="${DEMO_RUN_DIR:-$HERE/.run}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
LOG_DIR="$RUN_DIR/logs"
mkdir -p "$LOG_DIR"

SITE_PORT="${DEMO_SITE_PORT:-8000}"
IDP_PORT="${DEMO_IDP_PORT:-9000}"
[[ "$SITE_PORT" =~ ^[0-9]+$ && "$IDP_PORT" =~ ^[0-9]+$ ]] || die "ports must be numbers"
SITE_URL="http://localhost:$SITE_PORT"
IDP_URL="http://127.0.0.1:$IDP_PORT"
LOCAL_IDP="${DEMO_LOCAL_IDP:-1}"
START_TIMEOUT="${DEMO_START_TIMEOUT:-60}"

CLIENT_ID="bookstore-demo"
# The bookstore's API: the audience of the IdP's access tokens for it, and the
# application (client credentials) that call_api.py calls it as.
API_AUDIENCE="$SITE_URL/api/"
API_CLIENT_ID="bookstore-daemon"
# The SAML connector to the same IdP. Its SP entity ID is its metadata URL on the
# site's address, which the IdP is told to trust (and fetches once the site runs).
SAML_SLUG="bookstore-saml"
SAML_DOMAIN="saml.bookstore.example"
SAML_SP_METADATA_URL="$SITE_URL/sso/saml/metadata/$SAML_SLUG/"
# A new customer who sets up their own connector from the setup link demo.sh prints.
SELF_SERVICE_SLUG="northwind"
ADMIN_USER="admin"
ADMIN_PASSWORD="admin-demo-pw"

export IDP_ISSUER="$IDP_URL/o"
export IDP_API_AUDIENCE="$API_AUDIENCE"
export IDP_DATA_DIR="$RUN_DIR/idp"
export BOOKSTORE_DATA_DIR="$RUN_DIR/site"
# The IdP's SAML metadata, written before the IdP runs, read by the connector.
SAML_IDP_METADATA_FILE="$IDP_DATA_DIR/saml_idp_metadata.xml"

if [[ -n "$ADD_CLIENT" ]]; then
	[[ "$ADD_CLIENT" != "$CLIENT_ID" && "$ADD_CLIENT" != "$API_CLIENT_ID" ]] ||
		die "--add-client $ADD_CLIENT is one of the demo's own clients; pick another name."
	[[ "$LOCAL_IDP" != 0 ]] || die "--add-client registers at the local IdP: unset DEMO_LOCAL_IDP=0."
fi

ENTRA=0
# --add-client leaves the bookstore alone, and with it any Entra ID settings.
if [[ -z "$ADD_CLIENT" && -n "${ENTRA_CLIENT_ID:-}" ]]; then
	[[ -n "${ENTRA_CLIENT_SECRET:-}" ]] || die "ENTRA_CLIENT_ID is set, ENTRA_CLIENT_SECRET is not."
	if [[ -z "${ENTRA_ISSUER:-}" ]]; then
		[[ -n "${ENTRA_TENANT_ID:-}" ]] || die "Set ENTRA_ISSUER or ENTRA_TENANT_ID for the entra connector."
		ENTRA_ISSUER="https://login.microsoftonline.com/$ENTRA_TENANT_ID/v2.0"
	fi
	[[ -n "${ENTRA_DOMAIN:-}" ]] || die "Set ENTRA_DOMAIN (your organization's email domain, e.g. contoso.com)."
	ENTRA=1
fi
ENTRA_SAML=0
if [[ -z "$ADD_CLIENT" && -n "${ENTRA_SAML_METADATA_URL:-}" ]]; then
	[[ -n "${ENTRA_SAML_DOMAIN:-}" ]] || die "Set ENTRA_SAML_DOMAIN (the email domain of the SAML connector; not one the entra connector has)."
	ENTRA_SAML=1
fi
if [[ "$LOCAL_IDP" == 0 && "$ENTRA" == 0 && "$ENTRA_SAML" == 0 ]]; then
	die "DEMO_LOCAL_IDP=0 needs a real tenant: set ENTRA_CLIENT_ID and friends (see README.md)."
fi
# The SAML connector to the local IdP: both ends sign and check XML with xmlsec1.
LOCAL_SAML=0
if [[ -z "$ADD_CLIENT" && "$LOCAL_IDP" != 0 ]]; then
	if command -v xmlsec1 >/dev/null 2>&1; then
		LOCAL_SAML=1
		# The IdP signs people in with SAML only to the SPs listed here (their entity
		# IDs = metadata URLs); one you set yourself is kept beside the bookstore's.
		export IDP_SAML_SP_METADATA_URLS="$SAML_SP_METADATA_URL${IDP_SAML_SP_METADATA_URLS:+ $IDP_SAML_SP_METADATA_URLS}"
	else
		cat >&2 <<EOF
demo.sh: notice: the xmlsec1 program is not installed, so the SAML connector
         $SAML_SLUG (@$SAML_DOMAIN) is left out; the OIDC one works as usual.
         To try SAML, install xmlsec1 and run demo.sh again:
           Debian/Ubuntu:  sudo apt-get install xmlsec1
           Fedora/RHEL:    sudo dnf install xmlsec1 xmlsec1-openssl
           macOS:          brew install libxmlsec1
EOF
	fi
fi

# -- Python ----------------------------------------------------------------------
if [[ "${DEMO_SKIP_INSTALL:-0}" == 1 ]]; then
	PY="${PYTHON:-python3}"
	export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
	step "Using $PY as it is (DEMO_SKIP_INSTALL=1)"
else
	VENV="$RUN_DIR/venv"
	PY="$VENV/bin/python"
	if [[ ! -x "$PY" ]]; then
		BASE_PY="${PYTHON:-python3}"
		command -v "$BASE_PY" >/dev/null || die "$BASE_PY not found; install Python 3.10 or newer."
		"$BASE_PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
			die "$BASE_PY is older than Python 3.10."
		step "Creating a virtualenv in $VENV"
		"$BASE_PY" -m venv "$VENV" ||
			die "could not create a virtualenv (on Debian/Ubuntu: apt-get install python3-venv)."
	fi
	# Install again only when what is installed from has changed.
	STAMP="$VENV/.demo-installed"
	WANT="$("$PY" - "$ROOT/pyproject.toml" "$HERE/requirements.txt" "$HERE/idp/requirements.txt" <<'EOF'
import hashlib, sys
digest = hashlib.sha256()
for name in sys.argv[1:]:
    with open(name, "rb") as fh:
        digest.update(fh.read())
print(digest.hexdigest())
EOF
)"
	if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
		step "Installing the app and the demo's requirements (the first time takes a minute)"
		"$PY" -m pip install --disable-pip-version-check -q \
			-e "$ROOT" -r "$HERE/idp/requirements.txt" -r "$HERE/requirements.txt" ||
			die "pip install failed (see above)."
		printf '%s\n' "$WANT" >"$STAMP"
	else
		step "Reusing the virtualenv in $VENV"
	fi
fi

port_in_use() {
	"$PY" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

# Runs a setup command quietly; shows its output only when it fails.
SETUP_LOG="$LOG_DIR/setup.log"
# A running demo keeps its setup log.
[[ -z "$ADD_CLIENT" ]] || SETUP_LOG="$LOG_DIR/add-client.log"
quietly() {
	local what="$1" log="$SETUP_LOG"
	shift
	if ! "$@" >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "$what failed (whole output in $log)."
	fi
}

: >"$SETUP_LOG"
idp() { (cd "$HERE/idp" && DJANGO_SETTINGS_MODULE=idp_site.settings "$PY" manage.py "$@"); }

# -- --add-client: one more client at the local IdP, then exit ---------------------
if [[ -n "$ADD_CLIENT" ]]; then
	CLIENT_SECRET_FILE="$RUN_DIR/clients/$ADD_CLIENT.secret"
	SECRET_NOTE="the same as before, kept in $CLIENT_SECRET_FILE; delete it for a new one"
	[[ -e "$CLIENT_SECRET_FILE" ]] || SECRET_NOTE="new, kept in $CLIENT_SECRET_FILE"
	if [[ ${#ADD_LOGOUT_URIS[@]} -eq 0 ]]; then
		# The app's default after sign-out (/sso/logout/done/ beside /sso/callback/<slug>/),
		# and the site's home page for a site that sets ENTRA_SSO_POST_LOGOUT_REDIRECT_URL so.
		for uri in "${ADD_REDIRECT_URIS[@]}"; do
			candidates=()
			if [[ "$uri" =~ ^(.*/)callback/[^/?#]+/?$ ]]; then
				candidates+=("${BASH_REMATCH[1]}logout/done/")
			fi
			[[ "$uri" =~ ^(https?://[^/?#]+) ]] && candidates+=("${BASH_REMATCH[1]}/")
			for candidate in ${candidates[@]+"${candidates[@]}"}; do
				case " ${ADD_LOGOUT_URIS[*]-} " in
				*" $candidate "*) ;;
				*) ADD_LOGOUT_URIS+=("$candidate") ;;
				esac
			done
		done
	fi
	client_args=()
	for uri in "${ADD_REDIRECT_URIS[@]}"; do client_args+=(--redirect-uri "$uri"); done
	for uri in "${ADD_LOGOUT_URIS[@]}"; do client_args+=(--post-logout-redirect-uri "$uri"); done
	step "Registering the client $ADD_CLIENT at the local IdP (data in $IDP_DATA_DIR)"
	quietly "migrating the IdP" idp migrate --noinput
	quietly "registering the client $ADD_CLIENT" idp add_client --client-id "$ADD_CLIENT" \
		--client-secret-file "$CLIENT_SECRET_FILE" "${client_args[@]}"
	ADDED_SECRET="$(tr -d '[:space:]' <"$CLIENT_SECRET_FILE")"
	# The connector's slug is the last part of its callback path, /sso/callback/<slug>/.
	ADDED_SLUG="${ADD_CLIENT//./-}"
	if [[ "${ADD_REDIRECT_URIS[0]}" =~ /callback/([A-Za-z0-9_-]+)/?([?].*)?$ ]]; then
		ADDED_SLUG="${BASH_REMATCH[1]}"
	fi
	CONNECTOR_LINE="python manage.py sso_connector add $ADDED_SLUG --provider oidc --name \"Demo IdP\" --issuer $IDP_ISSUER --client-id $ADD_CLIENT --client-secret-stdin --response-mode query --domain bookstore.example"
	cat <<EOF

  Client $ADD_CLIENT is registered at the demo IdP (data in $IDP_DATA_DIR).

  Issuer          $IDP_ISSUER
  Client ID       $ADD_CLIENT
  Client secret   $ADDED_SECRET
                  ($SECRET_NOTE)
  Redirect URIs   ${ADD_REDIRECT_URIS[*]}
  After sign-out  ${ADD_LOGOUT_URIS[*]}

  On your site, add the connector (query response mode: the demo IdP has no form_post),
  then paste the client secret and press Enter:

    $CONNECTOR_LINE

  or, with nothing to paste (the secret read from its file):

    $CONNECTOR_LINE <$(printf '%q' "$CLIENT_SECRET_FILE")

  Then start the IdP with ./example_project/demo.sh (with the same DEMO_IDP_PORT and
  DEMO_RUN_DIR) and sign in on your site as alice@bookstore.example / alice-demo-pw.

EOF
	exit 0
fi

# -- the client secret, made once ------------------------------------------------
SECRET_FILE="$RUN_DIR/client_secret"
if [[ ! -s "$SECRET_FILE" ]]; then
	(umask 077 && "$PY" -c 'import secrets; print(secrets.token_hex(24))' >"$SECRET_FILE")
fi
SECRET="$(tr -d '[:space:]' <"$SECRET_FILE")"

# -- the local IdP -----------------------------------------------------------------
if [[ "$LOCAL_IDP" != 0 ]]; then
	step "Preparing the local IdP (data in $IDP_DATA_DIR)"
	quietly "migrating the IdP" idp migrate --noinput
	quietly "seeding the IdP" idp seed_idp \
		--client-id "$CLIENT_ID" --client-secret "$SECRET" \
		--redirect-uri "$SITE_URL/sso/callback/bookstore/" \
		--redirect-uri "http://127.0.0.1:$SITE_PORT/sso/callback/bookstore/" \
		--redirect-uri "$SITE_URL/sso/callback/$SELF_SERVICE_SLUG/" \
		--post-logout-redirect-uri "$SITE_URL/" \
		--post-logout-redirect-uri "http://127.0.0.1:$SITE_PORT/"
	quietly "registering the API client $API_CLIENT_ID" idp add_api_client \
		--client-id "$API_CLIENT_ID" --client-secret-file "$RUN_DIR/clients/$API_CLIENT_ID.secret"
fi
if [[ "$LOCAL_SAML" == 1 ]]; then
	quietly "writing the IdP's SAML metadata" idp saml_metadata \
		--out "$SAML_IDP_METADATA_FILE" --base-url "$IDP_URL"
fi

# -- the bookstore -----------------------------------------------------------------
step "Preparing the bookstore (data in $BOOKSTORE_DATA_DIR)"
site() { (cd "$HERE" && DJANGO_SETTINGS_MODULE=bookstore.settings "$PY" manage.py "$@"); }
quietly "migrating the bookstore" site migrate --noinput
if [[ "$LOCAL_IDP" != 0 ]]; then
	# The secret goes through the environment, not the command line (ps, history).
	export BOOKSTORE_CLIENT_SECRET="$SECRET"
	quietly "adding the bookstore connector" site sso_connector add bookstore \
		--issuer "$IDP_ISSUER" --client-id "$CLIENT_ID" --client-secret-env BOOKSTORE_CLIENT_SECRET \
		--name "Bookstore Demo IdP" --provider oidc --domain bookstore.example \
		--response-mode query --api-audience "$API_AUDIENCE"
	map_groups=(--map-groups bookstore)
	if [[ "$LOCAL_SAML" == 1 ]]; then
		# The IdP is not running yet: the connector reads its metadata from the file.
		quietly "adding the $SAML_SLUG connector" site sso_connector add "$SAML_SLUG" \
			--protocol saml --saml-metadata-file "$SAML_IDP_METADATA_FILE" \
			--provider oidc --name "Bookstore Demo IdP (SAML)" --domain "$SAML_DOMAIN"
		map_groups+=(--map-groups "$SAML_SLUG")
	fi
	quietly "seeding the bookstore" site bookstore_setup \
		--admin-username "$ADMIN_USER" --admin-password "$ADMIN_PASSWORD" "${map_groups[@]}" \
		--self-service "$SELF_SERVICE_SLUG"
	# A new customer's setup link (one-time; each start replaces the last one). Once the
	# customer activated it, the connector is on and takes no link (the command says so).
	if ! SETUP_LINK="$(site sso_connector invite "$SELF_SERVICE_SLUG" --base-url "$SITE_URL" 2>/dev/null | tail -n 1)" \
		|| [[ "$SETUP_LINK" != http* ]]; then
		SETUP_LINK="none: $SELF_SERVICE_SLUG is switched on (set up already); switch it off in the admin for a new link"
	fi
else
	quietly "seeding the bookstore" site bookstore_setup \
		--admin-username "$ADMIN_USER" --admin-password "$ADMIN_PASSWORD"
fi
if [[ "$ENTRA" == 1 ]]; then
	entra_domains=()
	ENTRA_DOMAINS_SHOWN=""
	for domain in ${ENTRA_DOMAIN//,/ }; do
		entra_domains+=(--domain "$domain")
		ENTRA_DOMAINS_SHOWN="${ENTRA_DOMAINS_SHOWN:+$ENTRA_DOMAINS_SHOWN or }@$domain"
	done
	quietly "adding the entra connector" site sso_connector add entra \
		--issuer "$ENTRA_ISSUER" --client-id "$ENTRA_CLIENT_ID" \
		--client-secret-env ENTRA_CLIENT_SECRET --name "Microsoft Entra ID" \
		--provider entra_id --response-mode form_post "${entra_domains[@]}"
fi
if [[ "$ENTRA_SAML" == 1 ]]; then
	saml_domains=()
	for domain in ${ENTRA_SAML_DOMAIN//,/ }; do saml_domains+=(--domain "$domain"); done
	# --allow-idp-initiated: Entra's "Test this application" button starts at Entra.
	quietly "adding the entra-saml connector" site sso_connector add entra-saml \
		--protocol saml --saml-metadata-url "$ENTRA_SAML_METADATA_URL" \
		--name "Microsoft Entra ID (SAML)" --provider entra_id --allow-idp-initiated \
		"${saml_domains[@]}"
fi

# -- start, wait, report ---------------------------------------------------------------
if [[ "$LOCAL_IDP" != 0 ]] && port_in_use "$IDP_PORT"; then
	die "port $IDP_PORT is taken; stop what runs there or set DEMO_IDP_PORT."
fi
if port_in_use "$SITE_PORT"; then
	die "port $SITE_PORT is taken; stop what runs there or set DEMO_SITE_PORT."
fi

IDP_PID=""
SITE_PID=""
stop_servers() {
	trap - EXIT INT TERM
	local pid
	for pid in $SITE_PID $IDP_PID; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $SITE_PID $IDP_PID; do
		wait "$pid" 2>/dev/null || true
	done
	say "Stopped the demo."
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Background jobs of a script ignore SIGINT, so Ctrl-C reaches only this script,
# whose EXIT trap then stops both servers.
if [[ "$LOCAL_IDP" != 0 ]]; then
	(cd "$HERE/idp" && exec env DJANGO_SETTINGS_MODULE=idp_site.settings "$PY" manage.py runserver "127.0.0.1:$IDP_PORT" --noreload) \
		>"$LOG_DIR/idp.log" 2>&1 &
	IDP_PID=$!
fi
(cd "$HERE" && exec env DJANGO_SETTINGS_MODULE=bookstore.settings "$PY" manage.py runserver "127.0.0.1:$SITE_PORT" --noreload) \
	>"$LOG_DIR/site.log" 2>&1 &
SITE_PID=$!

# Waits until URL answers with any HTTP status, or the server exits, or time runs out.
wait_until_up() {
	local name="$1" url="$2" pid="$3" log="$4"
	if ! "$PY" - "$url" "$pid" "$START_TIMEOUT" <<'EOF'; then
import os, sys, time, urllib.error, urllib.request
url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)
    try:
        urllib.request.urlopen(url, timeout=2).close()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
		tail -n 30 "$log" >&2
		die "the $name did not answer at $url (log: $log)."
	fi
}
step "Starting the servers"
if [[ -n "$IDP_PID" ]]; then
	wait_until_up "local IdP" "$IDP_ISSUER/.well-known/openid-configuration" "$IDP_PID" "$LOG_DIR/idp.log"
fi
wait_until_up "bookstore" "$SITE_URL/" "$SITE_PID" "$LOG_DIR/site.log"

CONNECTORS=""
[[ "$LOCAL_IDP" != 0 ]] && CONNECTORS="bookstore"
[[ "$LOCAL_SAML" == 1 ]] && CONNECTORS="$CONNECTORS $SAML_SLUG"
[[ "$ENTRA" == 1 ]] && CONNECTORS="$CONNECTORS entra"
[[ "$ENTRA_SAML" == 1 ]] && CONNECTORS="$CONNECTORS entra-saml"
for slug in $CONNECTORS; do
	site sso_connector test "$slug" 2>&1 | sed 's/^/    /' || true
done

cat <<EOF

  The bookstore demo is running.

  Open        $SITE_URL/
EOF
if [[ "$LOCAL_IDP" != 0 ]]; then
	cat <<EOF
  Sign in     click "Sign in with SSO", type  alice@bookstore.example
              at the demo IdP: user  alice  password  alice-demo-pw , then Authorize
              (or bob@bookstore.example: bob / bob-demo-pw)
EOF
	if [[ "$LOCAL_SAML" == 1 ]]; then
		cat <<EOF
  SAML        type  alice@$SAML_DOMAIN  for the same IdP over SAML ($SAML_SLUG):
              user  alice  password  alice-demo-pw  (or bob@$SAML_DOMAIN: bob / bob-demo-pw)
EOF
	else
		say "  SAML        left out: install xmlsec1 (apt-get install xmlsec1) and run demo.sh again"
	fi
fi
if [[ "$ENTRA" == 1 ]]; then
	cat <<EOF
  Entra ID    type an address $ENTRA_DOMAINS_SHOWN and sign in at Microsoft
              redirect URI            $SITE_URL/sso/callback/entra/
              front-channel logout    $SITE_URL/sso/logout/frontchannel/entra/
EOF
fi
if [[ "$ENTRA_SAML" == 1 ]]; then
	cat <<EOF
  Entra SAML  type an address at ${ENTRA_SAML_DOMAIN//,/ or } and sign in at Microsoft
              Identifier (Entity ID)  $SITE_URL/sso/saml/metadata/entra-saml/
              Reply URL (ACS)         $SITE_URL/sso/saml/acs/entra-saml/
              Logout Url              $SITE_URL/sso/saml/sls/entra-saml/
EOF
fi
cat <<EOF
  Admin       $SITE_URL/admin/   user  $ADMIN_USER  password  $ADMIN_PASSWORD
EOF
if [[ "$LOCAL_IDP" != 0 ]]; then
	say "  Demo IdP    $IDP_URL/   (issuer $IDP_ISSUER)"
	if [[ "$LOCAL_SAML" == 1 ]]; then
		say "              SAML metadata $IDP_URL/saml/metadata/"
	fi
	cat <<EOF
  Setup link  $SETUP_LINK
              a new customer (Northwind) sets up their own connector: fill in issuer
              $IDP_ISSUER, client ID $CLIENT_ID and the secret in $SECRET_FILE,
              Try signing in, Activate (their domain is then verified in the admin, by hand)
EOF
	# call_api.py's defaults are demo.sh's: name the knobs that differ from them.
	knobs=""
	[[ "$IDP_PORT" == 9000 ]] || knobs="${knobs}DEMO_IDP_PORT=$IDP_PORT "
	[[ "$SITE_PORT" == 8000 ]] || knobs="${knobs}DEMO_SITE_PORT=$SITE_PORT "
	[[ "$RUN_DIR" == "$HERE/.run" ]] || knobs="${knobs}DEMO_RUN_DIR=$(printf '%q' "$RUN_DIR") "
	cat <<EOF
  API         $knobs$(printf '%q' "$PY") $(printf '%q' "$HERE/call_api.py")
              (the application $API_CLIENT_ID gets a token, calls $SITE_URL/api/books/)
EOF
fi
cat <<EOF
  Logs        $LOG_DIR/site.log  $LOG_DIR/idp.log

  Press Ctrl-C to stop both servers.

EOF

# bash 3.2 (macOS) has no "wait -n": poll, so either server dying ends the demo.
while kill -0 "$SITE_PID" 2>/dev/null && { [[ -z "$IDP_PID" ]] || kill -0 "$IDP_PID" 2>/dev/null; }; do
	sleep 1
done
say "demo.sh: a server stopped on its own; see the logs in $LOG_DIR." >&2
exit 1
