//! `scaling:` at the top level and per function, overlaid key by key on
//! [`Scaling::default`].

use crate::ctx::{Ctx, Section};
use crate::error::ManifestError;
use crate::yaml::{Loc, Node};
use crate::Scaling;

const KEYS: &[&str] = &[
    "idleTimeout",
    "maxLifetime",
    "maxInstances",
    "minInstances",
    "startTimeout",
    "queueTimeout",
    "burst",
    "burstRefillPerMinute",
];

/// A value and where it was set, so that a conflict between keys set in
/// different places is reported at the one set last.
#[derive(Clone, Copy)]
struct Setting<T> {
    value: T,
    loc: Loc,
}

/// The keys one `scaling:` mapping sets; unset keys come from the layer below.
#[derive(Clone, Copy, Default)]
pub(crate) struct ScalingLayer {
    idle: Option<Setting<f64>>,
    lifetime: Option<Setting<f64>>,
    max: Option<Setting<u32>>,
    min: Option<Setting<u32>>,
    start: Option<Setting<f64>>,
    queue: Option<Setting<f64>>,
    burst: Option<Setting<u32>>,
    refill: Option<Setting<u32>>,
}

pub(crate) fn read(
    ctx: &Ctx<'_>,
    node: &Node,
    section: Section<'_>,
) -> Result<ScalingLayer, ManifestError> {
    let node = ctx.val(node)?;
    let fields = ctx.fields(&node, "scaling", section, KEYS)?;
    let seconds = |key: &str| -> Result<Option<Setting<f64>>, ManifestError> {
        fields
            .get(key)
            .map(|n| {
                Ok(Setting {
                    value: ctx.seconds(n, key)?,
                    loc: n.loc,
                })
            })
            .transpose()
    };
    let count = |key: &str, min: u32| -> Result<Option<Setting<u32>>, ManifestError> {
        fields
            .get(key)
            .map(|n| {
                Ok(Setting {
                    value: ctx.whole_u32(n, key, min)?,
                    loc: n.loc,
                })
            })
            .transpose()
    };
    Ok(ScalingLayer {
        idle: seconds("idleTimeout")?,
        lifetime: seconds("maxLifetime")?,
        max: count("maxInstances", 1)?,
        min: count("minInstances", 0)?,
        start: seconds("startTimeout")?,
        queue: seconds("queueTimeout")?,
        burst: count("burst", 1)?,
        refill: count("burstRefillPerMinute", 0)?,
    })
}

/// The function's own layer over the top-level one over the defaults, with
/// the keys checked against each other (each key's own range was checked
/// when it was read). A conflict is reported at the key set closest to the
/// function, which is the one its author most likely just wrote.
pub(crate) fn resolve(
    ctx: &Ctx<'_>,
    top: &ScalingLayer,
    own: &ScalingLayer,
) -> Result<Scaling, ManifestError> {
    let layer = own.over(top);
    let d = Scaling::default();
    let scaling = Scaling {
        idle_timeout_secs: layer.idle.map_or(d.idle_timeout_secs, |s| s.value),
        max_lifetime_secs: layer.lifetime.map_or(d.max_lifetime_secs, |s| s.value),
        max_instances: layer.max.map_or(d.max_instances, |s| s.value),
        min_instances: layer.min.map_or(d.min_instances, |s| s.value),
        start_timeout_secs: layer.start.map_or(d.start_timeout_secs, |s| s.value),
        queue_timeout_secs: layer.queue.map_or(d.queue_timeout_secs, |s| s.value),
        burst: layer.burst.map_or(d.burst, |s| s.value),
        burst_refill_per_minute: layer.refill.map_or(d.burst_refill_per_minute, |s| s.value),
    };
    if scaling.min_instances > scaling.max_instances {
        let blamed = [own.min, own.max, top.min, top.max]
            .into_iter()
            .flatten()
            .map(|s| s.loc)
            .next()
            .unwrap_or(Loc::START);
        return Err(ctx.error(
            blamed,
            format!(
                "`minInstances` ({}) must not be more than `maxInstances` ({})",
                scaling.min_instances, scaling.max_instances
            ),
        ));
    }
    Ok(scaling)
}

impl ScalingLayer {
    /// `self` on top of `base`: keys set here win.
    fn over(&self, base: &ScalingLayer) -> ScalingLayer {
        ScalingLayer {
            idle: self.idle.or(base.idle),
            lifetime: self.lifetime.or(base.lifetime),
            max: self.max.or(base.max),
            min: self.min.or(base.min),
            start: self.start.or(base.start),
            queue: self.queue.or(base.queue),
            burst: self.burst.or(base.burst),
            refill: self.refill.or(base.refill),
        }
    }
}
