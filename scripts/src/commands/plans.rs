use crate::cli::{PlanSet, PlansCommand};
use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use tollgate_app::admin_console::plan_listing;
use tollgate_app::role_sync::PlanUpdate;
use tollgate_app::App;
use tollgate_core::{parse_duration, GuildId, RoleId, Tier};

fn line(item: &Value) -> String {
    let join = |key: &str| {
        item[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    let mut text = format!(
        "{:<20} guild {}  roles {}",
        item["plan"].as_str().unwrap_or_default(),
        item["guildId"].as_str().unwrap_or_default(),
        join("roleIds")
    );
    for (label, key) in [
        ("sellapp products", "sellappProducts"),
        ("sellapp variants", "sellappVariants"),
        ("stripe prices", "stripePrices"),
    ] {
        let ids = join(key);
        if !ids.is_empty() {
            text.push_str(&format!("  {label} {ids}"));
        }
    }
    if let Some(duration) = item["duration"].as_str() {
        text.push_str(&format!("  lasts {duration}"));
    }
    if let (Some(group), Some(rank)) = (item["group"].as_str(), item["rank"].as_i64()) {
        text.push_str(&format!("  tier {group}#{rank}"));
    }
    text
}

/// Repeated ids; a single empty value clears the list; absent leaves it.
fn ids(values: Vec<String>) -> Option<Vec<String>> {
    match values.as_slice() {
        [] => None,
        [only] if only.trim().is_empty() => Some(Vec::new()),
        _ => Some(values.into_iter().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect()),
    }
}

pub async fn run(config: &Config, json: bool, command: PlansCommand) -> Result<i32> {
    let (appwrite, settings) = (config.appwrite()?, config.settings()?);
    let app = App::new(&appwrite, &settings, &SystemClock);
    match command {
        PlansCommand::List => {
            let catalogue = app.plan_catalogue().await?;
            let items = plan_listing(&catalogue);
            let broken: Vec<Value> =
                catalogue.broken.iter().map(|b| json!({ "document": b.document_id, "reason": b.reason })).collect();
            let value = json!({ "plans": items, "broken": broken });
            print(json, &value, || {
                let mut lines: Vec<String> = items.iter().map(line).collect();
                if lines.is_empty() {
                    lines.push("no plans yet (tollgate plans set PLAN --roles ID,ID --sellapp-product ID)".to_owned());
                }
                lines.extend(catalogue.broken.iter().map(|b| format!("UNREADABLE {}: {}", b.document_id, b.reason)));
                lines.join("\n")
            });
            Ok(0)
        }
        PlansCommand::Set(set) => {
            let PlanSet {
                plan,
                roles,
                guild,
                sellapp_products,
                sellapp_variants,
                stripe_prices,
                duration,
                group,
                rank,
            } = *set;
            if plan.trim().is_empty() {
                bail!("the plan name is empty");
            }
            let guild = match guild {
                Some(raw) => GuildId::parse(&raw).map_err(|e| anyhow!("--guild: {e}"))?,
                None => config.guild()?,
            };
            let roles = roles
                .map(|list| {
                    list.iter()
                        .map(|r| RoleId::parse(r.trim()).map_err(|e| anyhow!("--roles: {e}")))
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?;
            let duration = match duration.as_deref().map(str::trim) {
                None => None,
                Some("none") => Some(None),
                Some(raw) => Some(Some(parse_duration(raw).map_err(|e| anyhow!("--duration: {e}"))?)),
            };
            let tier = match (group, rank) {
                (Some(group), _) if group.trim() == "none" => Some(None),
                (Some(group), Some(rank)) if !group.trim().is_empty() => {
                    Some(Some(Tier { group: group.trim().to_owned(), rank }))
                }
                (None, None) => None,
                _ => bail!("--group needs a name and --rank a number"),
            };
            let update = PlanUpdate {
                roles,
                sellapp_products: ids(sellapp_products),
                sellapp_variants: ids(sellapp_variants),
                stripe_prices: ids(stripe_prices),
                duration,
                tier,
            };
            if update == PlanUpdate::default() {
                bail!("nothing to change: give --roles, --sellapp-product, --sellapp-variant, --stripe-price, --duration or --group/--rank");
            }
            app.set_plan(&plan, guild, &update).await?;
            let catalogue = app.plan_catalogue().await?;
            let value = plan_listing(&catalogue).into_iter().find(|p| p["plan"] == plan.as_str()).unwrap_or_else(|| {
                json!({ "plan": plan, "unreadable": catalogue.broken.iter().map(|b| b.reason.clone()).collect::<Vec<_>>() })
            });
            print(json, &value, || {
                if value.get("unreadable").is_some() {
                    format!("{plan} was written but cannot be read back: {value}")
                } else {
                    line(&value)
                }
            });
            Ok(0)
        }
    }
}
