//! Every buyer's final state, read once the system is quiet and checked ([`crate::check`]).

use super::*;

impl Runner<'_> {
    /// Reads the final state of the phase's orders and judges it.
    pub async fn check_phase(&self, plan: &PhasePlan) -> Result<Verdict> {
        let clock = SystemClock;
        let app = self.app(&clock);
        let s = &self.stack.settings;
        let orders: Vec<Result<(OrderView, Option<Member>)>> = futures::stream::iter(&plan.buyers)
            .map(|buyer| self.observe_order(&app, buyer))
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut views = Vec::new();
        let mut members = BTreeMap::new();
        for order in orders {
            let (view, member) = order?;
            views.push(view);
            members.extend(member);
        }
        let ids: BTreeSet<String> = plan.buyers.iter().map(|b| claim_id(b.order_id)).collect();
        let failures = self
            .client()
            .list_all_documents(&s.database_id, &s.collections.webhook_failures, &[], 100)
            .await?
            .into_iter()
            .filter(|doc| ids.contains(&doc.id))
            .map(|doc| FailureView {
                state: doc.data.get("state").and_then(Value::as_str).map(str::to_owned),
                what: format!("order {}", doc.data.get("orderId").and_then(Value::as_str).unwrap_or("?")),
                id: doc.id,
            })
            .collect();
        let mappings = app.plan_catalogue().await.map_err(|e| anyhow::anyhow!("the plan catalogue: {e}"))?.readable;
        Ok(verdict(&PhaseObserved {
            now: Utc::now(),
            grace: s.access_grace,
            guild: GuildId::parse(seed::GUILD_ID)?,
            mappings,
            orders: views,
            members,
            failures,
        }))
    }

    async fn observe_order(&self, app: &App<'_, SystemClock>, buyer: &Buyer) -> Result<(OrderView, Option<Member>)> {
        let s = &self.stack.settings;
        let id = AppwriteId::parse(&buyer.user_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let email = Email::parse(&buyer.email).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (claim_status, failure_state) =
            read_delivery(app, &claim_id(buyer.order_id)).await.map_err(|e| anyhow::anyhow!(e))?;
        let (discord, member) = match &buyer.discord {
            Some(discord) => {
                let linked = self.client().get_document(self.db(), &s.collections.profiles, id.as_str()).await;
                let linked =
                    linked.ok().and_then(|d| d.data.get("discordUserId").and_then(Value::as_str).map(str::to_owned));
                let account = DiscordUserId::parse(discord).map_err(|e| anyhow::anyhow!("{e}"))?;
                (linked.and_then(|l| DiscordUserId::parse(&l).ok()), Some((account, self.member_roles(discord).await?)))
            }
            None => (None, None),
        };
        let view = OrderView {
            order_id: buyer.order_id.to_string(),
            source: sellapp_order_source(Some(STORE), &buyer.order_id.to_string()),
            buyer: read_user(app, &id, &email, discord).await.map_err(|e| anyhow::anyhow!(e))?,
            claim_status,
            failure_state,
        };
        Ok((view, member))
    }

    /// The member's roles in the demo guild, through the Discord stand-in's own API.
    async fn member_roles(&self, discord: &str) -> Result<BTreeSet<RoleId>> {
        let url = format!("{}/guilds/{}/members/{discord}", self.devstack.discord_api_base(), seed::GUILD_ID);
        let member: Value = self
            .http
            .get(url)
            .header("Authorization", format!("Bot {}", seed::BOT_TOKEN))
            .send()
            .await?
            .json()
            .await
            .context("a guild member")?;
        let roles =
            member["roles"].as_array().with_context(|| format!("member {discord} has no roles list: {member}"))?;
        Ok(roles.iter().filter_map(Value::as_str).filter_map(|r| RoleId::parse(r).ok()).collect())
    }
}
