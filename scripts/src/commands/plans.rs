use crate::cli::PlansCommand;
use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::{anyhow, Result};
use serde_json::json;
use tollgate_app::role_sync::RoleSync;
use tollgate_app::App;
use tollgate_core::{GuildId, RoleId};

pub async fn run(config: &Config, json: bool, command: PlansCommand) -> Result<i32> {
    let (appwrite, settings, discord) = (config.appwrite()?, config.settings()?, config.discord()?);
    let app = App::new(&appwrite, &settings, &SystemClock);
    match command {
        PlansCommand::List => {
            let guild = config.guild()?;
            let mappings = RoleSync::new(app, &discord, guild).load_mappings().await?;
            let items: Vec<_> = mappings
                .iter()
                .map(|m| json!({ "plan": m.plan, "guildId": m.guild_id.to_string(), "roleIds": m.role_ids.iter().map(|r| r.to_string()).collect::<Vec<_>>() }))
                .collect();
            let value = json!({ "plans": items });
            print(json, &value, || {
                if mappings.is_empty() {
                    return "no plans mapped to roles yet (tollgate plans set PLAN --roles ID,ID)".to_owned();
                }
                mappings
                    .iter()
                    .map(|m| {
                        format!(
                            "{:<20} guild {}  roles {}",
                            m.plan,
                            m.guild_id,
                            m.role_ids.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(0)
        }
        PlansCommand::Set { plan, roles, guild } => {
            let guild = match guild {
                Some(raw) => GuildId::parse(&raw).map_err(|e| anyhow!("--guild: {e}"))?,
                None => config.guild()?,
            };
            let roles = roles
                .iter()
                .map(|r| RoleId::parse(r).map_err(|e| anyhow!("--roles: {e}")))
                .collect::<Result<Vec<_>>>()?;
            app.set_role_mapping(&plan, guild, &roles).await?;
            let value = json!({ "plan": plan, "guildId": guild.to_string(), "roleIds": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>() });
            print(json, &value, || format!("{plan} now grants {} role(s) in guild {guild}", roles.len()));
            Ok(0)
        }
    }
}
