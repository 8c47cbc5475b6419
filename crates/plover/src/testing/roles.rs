//! Acting as a Supabase user in tests: connections that run as `authenticated` with a
//! user's JWT claims (as PostgREST sets them), as `anon`, or as `service_role`, so
//! Row Level Security policies are exercised from Rust.

use tokio_postgres::Client;

use super::{TestDatabase, TestingError};

/// Sets the role and the claims for the rest of the session, as PostgREST does per
/// request: `request.jwt.claims` (JSON) and the older `request.jwt.claim.sub`.
const ACT_AS: &str = "
SELECT set_config('request.jwt.claims',
                  json_build_object('sub', $1::text, 'role', $2::text, 'aud', $2::text,
                                    'email', $3::text)::text, false),
       set_config('request.jwt.claim.sub', coalesce($1::text, ''), false),
       set_config('role', $2::text, false)";

const CREATE_USER: &str = "
INSERT INTO auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
                        email_confirmed_at, created_at, updated_at)
VALUES (gen_random_uuid(), 'authenticated', 'authenticated', $1,
        '{\"provider\": \"email\", \"providers\": [\"email\"]}', '{}', now(), now(), now())
RETURNING id::text";

/// A user made with [`TestDatabase::create_user`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// `auth.users.id`, as text.
    pub id: String,
    pub email: String,
}

impl TestDatabase {
    /// Inserts a user into `auth.users` (the Supabase baseline's or Supabase's).
    pub async fn create_user(&self, email: &str) -> Result<User, TestingError> {
        let client = self.client().await?;
        let row = client
            .query_one(CREATE_USER, &[&email])
            .await
            .map_err(crate::Error::db("creating a user in auth.users"))?;
        Ok(User {
            id: row
                .try_get(0)
                .map_err(crate::Error::db("creating a user in auth.users"))?,
            email: email.to_owned(),
        })
    }

    /// A connection running as `authenticated`, with `user`'s claims: `auth.uid()` is
    /// the user's id.
    pub async fn as_user(&self, user: &User) -> Result<Client, TestingError> {
        self.acting(Some(&user.id), "authenticated", Some(&user.email))
            .await
    }

    /// A connection running as `anon`, with no user.
    pub async fn as_anon(&self) -> Result<Client, TestingError> {
        self.acting(None, "anon", None).await
    }

    /// A connection running as `service_role`, which bypasses RLS.
    pub async fn as_service_role(&self) -> Result<Client, TestingError> {
        self.acting(None, "service_role", None).await
    }

    async fn acting(
        &self,
        sub: Option<&str>,
        role: &str,
        email: Option<&str>,
    ) -> Result<Client, TestingError> {
        let client = self.client().await?;
        client
            .query_one(ACT_AS, &[&sub, &role, &email])
            .await
            .map_err(crate::Error::db("switching role for the test connection"))?;
        Ok(client)
    }
}
