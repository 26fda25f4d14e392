//! Companies, as the CRM groups contacts: by the domain of their email address,
//! free-mail domains left out (they say nothing about an employer).

use crate::store::db::{Db, params};
use serde::Serialize;

use super::CrmError;
use super::dedupe::FREE_MAIL;
use crate::store::UnixMs;

/// One company and its people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Company {
    pub domain: String,
    pub contacts: u64,
    /// The latest activity of any of its contacts.
    pub last_activity: Option<UnixMs>,
    /// Open deals of its contacts: how many, and their total value.
    pub open_deals: u64,
    pub open_value: f64,
}

/// `company_domain NOT IN (…)` over the free-mail domains, as SQL literals (the
/// list is a constant of ours, not user input).
fn not_free_mail() -> String {
    let quoted: Vec<String> = FREE_MAIL.iter().map(|d| format!("'{d}'")).collect();
    format!("c.company_domain NOT IN ({})", quoted.join(", "))
}

const COMPANY_COLUMNS: &str = "c.company_domain, count(*), max(c.last_activity), \
     (SELECT count(*) FROM deals d JOIN contacts m ON m.id = d.contact_id \
        WHERE m.company_domain = c.company_domain AND d.status = 'open'), \
     (SELECT coalesce(sum(d.value), 0) FROM deals d JOIN contacts m ON m.id = d.contact_id \
        WHERE m.company_domain = c.company_domain AND d.status = 'open')";

fn company_row(r: crate::store::db::Row<'_>) -> Result<Company, crate::store::StoreError> {
    Ok(Company {
        domain: r.get(0)?,
        contacts: r.get::<i64>(1)?.max(0) as u64,
        last_activity: r.get(2)?,
        open_deals: r.get::<i64>(3)?.max(0) as u64,
        open_value: r.get(4)?,
    })
}

/// Companies with at least `min_contacts` contacts, the largest first (ties by
/// domain), at most `limit`. Erased contacts do not count.
pub fn list(conn: Db<'_>, min_contacts: u64, limit: usize) -> Result<Vec<Company>, CrmError> {
    let sql = format!(
        "SELECT {COMPANY_COLUMNS} FROM contacts c \
         WHERE c.company_domain IS NOT NULL AND c.status <> 'erased' AND {} \
         GROUP BY c.company_domain HAVING count(*) >= ?1 \
         ORDER BY count(*) DESC, c.company_domain LIMIT ?2",
        not_free_mail()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            i64::try_from(min_contacts).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        company_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One company by domain (`www.` and case ignored), with the ids of its contacts.
pub fn show(conn: Db<'_>, domain: &str) -> Result<(Company, Vec<i64>), CrmError> {
    let domain = domain.trim().to_lowercase();
    let domain = domain.trim_start_matches("www.").to_string();
    if FREE_MAIL.contains(&domain.as_str()) {
        return Err(CrmError::Invalid(format!(
            "`{domain}` is a free-mail domain: its addresses belong to no one company"
        )));
    }
    let sql = format!(
        "SELECT {COMPANY_COLUMNS} FROM contacts c \
         WHERE c.company_domain = ?1 AND c.status <> 'erased' GROUP BY c.company_domain"
    );
    let company = conn
        .prepare_cached(&sql)?
        .query_row(params![&domain], company_row)
        .map_err(|e| match e {
            crate::store::StoreError::NoRows => {
                CrmError::Invalid(format!("no contact has an address at `{domain}`"))
            }
            e => e.into(),
        })?;
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM contacts WHERE company_domain = ?1 AND status <> 'erased' ORDER BY id",
    )?;
    let ids = stmt
        .query_map(params![&domain], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((company, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companies_group_by_domain_without_free_mail() {
        let store = crate::store::test_db::TestDb::open();
        let conn = store.db();
        conn.execute_batch(
            "INSERT INTO contacts (id, uid, email, company_domain, created_at, updated_at, last_activity) VALUES
               (1, 'a', 'a@acme.test', 'acme.test', 0, 0, 10),
               (2, 'b', 'b@acme.test', 'acme.test', 0, 0, 30),
               (3, 'c', 'c@gmail.com', 'gmail.com', 0, 0, 5),
               (4, 'd', 'd@gmail.com', 'gmail.com', 0, 0, 5),
               (5, 'e', 'e@initech.test', 'initech.test', 0, 0, NULL);
             INSERT INTO deals (uid, contact_id, pipeline, stage, value, status, created_at, updated_at) VALUES
               ('d1', 2, 'sales', 'demo', 1200, 'open', 0, 0),
               ('d2', 1, 'sales', 'won', 900, 'won', 0, 0);",
        )
        .expect("insert");
        let all = list(conn, 1, 10).expect("list");
        let domains: Vec<&str> = all.iter().map(|c| c.domain.as_str()).collect();
        assert_eq!(domains, ["acme.test", "initech.test"]);
        assert_eq!(
            (
                all[0].contacts,
                all[0].last_activity,
                all[0].open_deals,
                all[0].open_value
            ),
            (2, Some(30), 1, 1200.0)
        );
        assert_eq!(list(conn, 2, 10).expect("list").len(), 1);
        let (acme, ids) = show(conn, "WWW.Acme.test").expect("show");
        assert_eq!((acme.contacts, ids), (2, vec![1, 2]));
        assert!(show(conn, "gmail.com").is_err());
        assert!(show(conn, "nobody.test").is_err());
    }
}
