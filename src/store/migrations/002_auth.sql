-- Registered systems (SMART Backend Services clients), each acting for one Organization.
CREATE TABLE client (
  id              text PRIMARY KEY,
  organization_id text NOT NULL,
  name            text NOT NULL,
  secret_hash     text NOT NULL,           -- scrypt$<salt>$<hash>
  jwks            jsonb,                   -- public keys for private_key_jwt, inline
  jwks_uri        text,                    -- or fetched from here
  scope           text NOT NULL,           -- the most a token may carry
  created         timestamptz NOT NULL DEFAULT now(),
  disabled_at     timestamptz
);
CREATE INDEX client_organization ON client (organization_id);

-- Keys the gateway signs its access tokens with; the newest is used, older ones still verify.
CREATE TABLE token_key (
  kid      text PRIMARY KEY,
  secret   bytea NOT NULL,
  created  timestamptz NOT NULL DEFAULT now()
);

-- client_assertion jti values seen, kept until the assertion would have expired anyway.
CREATE TABLE client_assertion_jti (
  client_id  text NOT NULL,
  jti        text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jti_expiry ON client_assertion_jti (expires_at);
